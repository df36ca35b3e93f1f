"""slmtune: turn a small open LLM into a private, fast, task-specific model."""

from slmtune.offline import go_offline

go_offline()

__version__ = "0.1.0"
