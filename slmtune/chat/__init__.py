"""Chat templates and rendering to (input_ids, labels)."""

from slmtune.chat.render import IGNORE, ChatRenderer, Rendered, TemplateError
from slmtune.chat.templates import (
    BUILTIN_TEMPLATES,
    TEMPLATE_NAMES,
    choose_template,
    install_template,
)

__all__ = [
    "BUILTIN_TEMPLATES",
    "IGNORE",
    "TEMPLATE_NAMES",
    "ChatRenderer",
    "Rendered",
    "TemplateError",
    "choose_template",
    "install_template",
]
