"""Chat templates: which one a model gets, and the built-in ones for models without one.

Every template is a Jinja chat template string, exactly the format Hugging Face tokenizers
carry. Built-ins are installed *on the tokenizer* (`tokenizer.chat_template = ...`), so
training, inference, the exported model and the server all render through one path, and a
merged export works in stock transformers with `apply_chat_template`.

`auto` picks:
  - Qwen3-style templates (they know `enable_thinking`) -> `qwen3`: ChatML with the empty
    `<think>\\n\\n</think>\\n\\n` block on *every* assistant turn, so thinking is off and the
    training sequence and the inference prompt agree byte for byte, also in multi-turn data
    (the stock Qwen3 template drops the block from earlier turns);
  - any other model that ships a template -> `hf` (the tokenizer's own);
  - no template: the family's turn format when known (Gemma turns), ChatML otherwise.
"""

from __future__ import annotations

from slmtune.errors import ConfigError

# Gemma has no system role: like Google's own template, the system text opens the first
# user turn, followed by a blank line.
GEMMA = (
    "{{ bos_token }}"
    "{% set ns = namespace(system='') %}"
    "{% for m in messages %}"
    "{% if m['role'] == 'system' %}{% set ns.system = m['content'] + '\n\n' %}"
    "{% elif m['role'] == 'user' %}"
    "<start_of_turn>user\n{{ ns.system }}{{ m['content'] }}<end_of_turn>\n"
    "{% set ns.system = '' %}"
    "{% else %}<start_of_turn>model\n{{ m['content'] }}<end_of_turn>\n"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}"
)

CHATML = (
    "{% for m in messages %}"
    "<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

QWEN3_NO_THINK = (
    "{% for m in messages %}"
    "{% if m['role'] == 'assistant' %}"
    "<|im_start|>assistant\n<think>\n\n</think>\n\n{{ m['content'] }}<|im_end|>\n"
    "{% else %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n<think>\n\n</think>\n\n{% endif %}"
)

BUILTIN_TEMPLATES: dict[str, str] = {"gemma": GEMMA, "chatml": CHATML, "qwen3": QWEN3_NO_THINK}
TEMPLATE_NAMES = ("auto", "hf", *BUILTIN_TEMPLATES)


def choose_template(tokenizer, model_type: str, name: str = "auto") -> str:
    """Return the template name to use for this tokenizer/model family."""
    if name not in TEMPLATE_NAMES:
        raise ConfigError(f"--template '{name}' is unknown: use one of {', '.join(TEMPLATE_NAMES)}")
    own = getattr(tokenizer, "chat_template", None)
    if name == "hf":
        if not own:
            raise ConfigError(
                "--template hf: this model ships no chat template; use auto, gemma, chatml or qwen3"
            )
        return "hf"
    if name != "auto":
        return name
    if own:
        return "qwen3" if "enable_thinking" in own else "hf"
    return "gemma" if model_type.startswith("gemma") else "chatml"


def install_template(tokenizer, name: str) -> None:
    """Put the chosen template on the tokenizer, where every renderer and export finds it."""
    if name in BUILTIN_TEMPLATES:
        tokenizer.chat_template = BUILTIN_TEMPLATES[name]
