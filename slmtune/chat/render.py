"""Render a conversation into (input_ids, labels): the only place loss masks are made.

A conversation is cut into segments by rendering growing prefixes with the chat template:

    render(messages[:i], add_generation_prompt=True)   -> everything the model *reads*
    render(messages[:i+1])                              -> ... plus assistant turn i

The text between the two is what the model must *write* for turn i (its content and the
turn-end marker, so generation learns to stop); everything else (system, user, template
scaffolding, the generation prompt) gets label -100. Each segment is tokenized on its own,
and inference tokenizes the prompt with the very same code, so the prompt the model sees
at inference equals, token for token, the training sequence before its first trained token.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from slmtune.config import DEFAULT_MAX_LENGTH
from slmtune.data.types import Message
from slmtune.errors import SlmtuneError

IGNORE = -100


class TemplateError(SlmtuneError):
    """The chat template cannot be split into prompt and answer for this conversation."""


@dataclass
class Rendered:
    input_ids: list[int]
    labels: list[int]
    truncated: bool = False  # the prompt was shortened to fit max_length
    answer_cut: bool = False  # even so, part of the answer did not fit

    @property
    def n_trained(self) -> int:
        return sum(label != IGNORE for label in self.labels)

    @property
    def prompt_length(self) -> int:
        """Tokens before the first trained token."""
        for i, label in enumerate(self.labels):
            if label != IGNORE:
                return i
        return len(self.labels)


class ChatRenderer:
    """Renders conversations with the tokenizer's chat template (see chat/templates.py)."""

    def __init__(
        self, tokenizer, *, max_length: int = DEFAULT_MAX_LENGTH, last_turn_only: bool = False
    ):
        if not getattr(tokenizer, "chat_template", None):
            raise TemplateError("the tokenizer has no chat template; call install_template first")
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.last_turn_only = last_turn_only

    # -- text -----------------------------------------------------------------------------
    def _text(self, messages: list[Message], generation_prompt: bool) -> str:
        # enable_thinking=False is ignored by templates that do not know it and turns
        # Qwen3's thinking off in those that do.
        try:
            return self._apply(messages, generation_prompt)
        # Jinja's raise_exception() surfaces as several types, e.g. Gemma-it's
        # "System role not supported".
        except Exception as e:
            if not messages or messages[0].role != "system":
                raise TemplateError(f"the chat template refused this conversation: {e}") from e
            # Templates without a system role: the system text opens the first user turn,
            # as Google's own Gemma template does for Gemma 3.
            return self._apply(fold_system(messages), generation_prompt)

    def _apply(self, messages: list[Message], generation_prompt: bool) -> str:
        return self.tokenizer.apply_chat_template(
            [{"role": m.role, "content": m.content} for m in messages],
            tokenize=False,
            add_generation_prompt=generation_prompt,
            enable_thinking=False,
        )

    def segments(self, messages: list[Message]) -> list[tuple[str, bool]]:
        """Split the rendered conversation into (text, trained) pieces.

        A conversation ending with a user turn (an inference prompt) gets the same pieces
        for its history plus one final piece up to the generation prompt, so inference
        tokenizes exactly like training did.
        """
        answer_turns = [i for i, m in enumerate(messages) if m.role == "assistant"]
        prompt_only = not messages or messages[-1].role != "assistant"
        if self.last_turn_only:
            answer_turns = [] if prompt_only else answer_turns[-1:]
        pieces: list[tuple[str, bool]] = []
        done = ""  # the rendered text covered by pieces so far
        for i in answer_turns:
            prompt = self._text(messages[:i], generation_prompt=True)
            full = self._text(messages[: i + 1], generation_prompt=False)
            if not prompt.startswith(done) or not full.startswith(prompt):
                raise TemplateError(
                    f"the chat template renders assistant turn {i} differently depending on "
                    "what follows it, so prompt and answer cannot be separated; train only "
                    "the last turn (--last-turn-only) or choose another --template"
                )
            pieces.append((prompt[len(done) :], False))
            pieces.append((full[len(prompt) :], True))
            done = full
        if prompt_only:
            final = self._text(messages, generation_prompt=True)
            if not final.startswith(done):
                raise TemplateError(
                    "the chat template renders the history differently in the prompt"
                )
            pieces.append((final[len(done) :], False))
        return [(text, trained) for text, trained in pieces if text]

    def prompt_text(self, messages: list[Message]) -> str:
        """What the model reads before it answers (messages end with a user turn)."""
        return self._text(messages, generation_prompt=True)

    # -- tokens ---------------------------------------------------------------------------
    def _encode(self, text: str) -> list[int]:
        # The template writes BOS and turn markers itself, so no special tokens are added.
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def _render_untruncated(self, messages: list[Message]) -> Rendered:
        ids: list[int] = []
        labels: list[int] = []
        for text, trained in self.segments(messages):
            piece = self._encode(text)
            ids += piece
            labels += piece if trained else [IGNORE] * len(piece)
        return Rendered(ids, labels)

    def render(self, messages: list[Message]) -> Rendered:
        """Training view: (input_ids, labels), shortened to max_length keeping the answer.

        Too long? The last user message is cut (from its end) until everything fits, so the
        template scaffolding and the answer survive and the same cut text would give the same
        prompt at inference. If even an empty user message does not fit, the sequence is cut
        at max_length and `answer_cut` is set.
        """
        out = self._render_untruncated(messages)
        if len(out.input_ids) <= self.max_length:
            return out
        cut = _shorten_last_user(
            messages, lambda m: len(self._render_untruncated(m).input_ids), self.max_length
        )
        if cut is not None:
            out = self._render_untruncated(cut)
            out.truncated = True
            return out
        return Rendered(out.input_ids[: self.max_length], out.labels[: self.max_length], True, True)

    def prompt_ids(
        self, messages: list[Message], max_tokens: int | None = None
    ) -> tuple[list[int], bool]:
        """Inference view: token ids of the prompt, and whether the input was shortened."""
        limit = max_tokens or self.max_length
        ids = self._prompt_ids_untruncated(messages)
        if len(ids) <= limit:
            return ids, False
        cut = _shorten_last_user(messages, lambda m: len(self._prompt_ids_untruncated(m)), limit)
        if cut is None:
            return ids[-limit:], True
        return self._prompt_ids_untruncated(cut), True

    def _prompt_ids_untruncated(self, messages: list[Message]) -> list[int]:
        return [i for text, _ in self.segments(messages) for i in self._encode(text)]

    @functools.cached_property
    def turn_end(self) -> str:
        """The marker the template writes after an answer (`<end_of_turn>`, `<|im_end|>`).
        Found once per renderer (a template render; every request asks for it)."""
        probe = [Message("user", "x"), Message("assistant", "y")]
        answer = [text for text, trained in self.segments(probe) if trained][0]
        return answer[answer.index("y") + 1 :].strip()

    @property
    def stop_token_ids(self) -> list[int]:
        """Token ids that end an answer: the turn-end marker (if it is one token) and EOS."""
        marker = self._encode(self.turn_end) if self.turn_end else []
        stops = marker if len(marker) == 1 else []
        eos = self.tokenizer.eos_token_id
        if eos is not None and eos not in stops:
            stops.append(eos)
        return stops

    @property
    def stop_strings(self) -> list[str]:
        """Turn-end markers that span several tokens (a base vocabulary without ChatML tokens)."""
        marker = self._encode(self.turn_end) if self.turn_end else []
        return [self.turn_end] if len(marker) > 1 else []


def fold_system(messages: list[Message]) -> list[Message]:
    """Merge a leading system message into the first user message (system + blank line)."""
    system, rest = messages[0].content, list(messages[1:])
    for i, m in enumerate(rest):
        if m.role == "user":
            rest[i] = Message("user", f"{system}\n\n{m.content}")
            return rest
    return rest


def _shorten_last_user(messages: list[Message], length_of, limit: int) -> list[Message] | None:
    """Binary-search the longest prefix of the last user message that fits within `limit`."""
    users = [i for i, m in enumerate(messages) if m.role == "user"]
    if not users:
        return None
    k = users[-1]
    content = messages[k].content

    def with_prefix(n: int) -> list[Message]:
        out = list(messages)
        out[k] = Message("user", content[:n])
        return out

    if length_of(with_prefix(0)) > limit:
        return None
    lo, hi = 0, len(content)  # invariant: prefix lo fits, prefix hi+1.. does not
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if length_of(with_prefix(mid)) <= limit:
            lo = mid
        else:
            hi = mid - 1
    return with_prefix(lo)
