"""Grounded (verbatim) fields: a value the schema marks `"verbatim": true` is copied from the
input, enforced token by token while decoding, and every answer says where it came from.

Training marks a string field (or the strings of a list field) verbatim when every value
the training answers give it is a substring of its record's input (run/schema.py); a user's
`--schema` can set or clear the mark by hand. While the decoder is inside such a value, a
token is allowed only if the value so far plus the token is still a contiguous piece of the
input (or the token closes the string), and the grammar's own mask (xgrammar: valid JSON,
the schema's keys and bounds) still applies on top. So a verbatim value can be neither
invented, nor normalised, nor longer than the input: a model that starts looping inside it
("楼上楼上…") runs out of input to copy and has to close the string.

How: the answer is JSON, so a value is the JSON-escaped form of its text (`\\n`, `\\"`).
Each character's escape does not depend on its neighbours, so "the value is a substring of
the input" is "its escaped bytes are a substring of the input's escaped bytes, starting at a
character". A row keeps the input's escaped bytes and the offsets where the copied part can
end (every occurrence of it); the next token's bytes must continue one of them. The tokens
with those bytes are found by dictionary lookups of the input's next few bytes (no scan of
the vocabulary), so a step costs a few hundred lookups. A small JSON scanner follows the
answer's bytes to know which key's value is being written.

A token can also open a value and start copying in one piece (`"北`, or `", "北` between
list items): for the few thousand tokens with a quote inside, the scanner works out once per
scanner state (kept per vocabulary) which bytes each would copy into a verbatim value, and a
row forbids those whose bytes are not a piece of its input.

A verbatim value with a shape (schema `"shape"`: email, url, phone; run/answer.py SHAPES)
is a value of that shape in the input from a word's edge to a word's edge (run/answer.py
shape_values), and cannot run from one span of the shape into the next (a NUL byte between
them): "s", "port@x.cn" or "support@x.c" of "support@x.cn" is no email, "abc@qq.com" of
"E-mail-abc@qq.com" is. A nullable one whose input has no such span cannot open at all (the
tokens that would open it, a bare quote included, are forbidden), so it is null.

run/answer.py's `spans` then gives each verbatim value's place in the input.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import torch

from slmtune.run.answer import (
    ITEM,
    shape_values,
    verbatim_bounds,
    verbatim_paths,
    verbatim_shapes,
)

QUOTE, BACKSLASH = ord('"'), ord("\\")
STATES_KEPT = 4096  # scanner states whose quote-token copies are kept per vocabulary


@dataclass
class _Frame:
    kind: str  # "object" | "array"
    key: str | None = None  # object: the key whose value comes next
    want_key: bool = True  # object: the next string is a key


@dataclass
class Segment:
    """Bytes a token copies into a verbatim value."""

    data: bytes
    continues: bool  # continues the value being written when the token started
    path: tuple = ()  # the value's place in the answer (verbatim_paths)
    closes: bool = False  # the token closes the value right after these bytes


@dataclass
class Scanner:
    """Follows an answer's JSON bytes: where it is, and which bytes go into verbatim values."""

    paths: tuple  # verbatim_paths of the schema
    stack: list[_Frame] = field(default_factory=list)
    in_string: bool = False
    string_is_key: bool = False
    escaped: bool = False
    verbatim: bool = False  # inside a verbatim value
    key: bytearray = field(default_factory=bytearray)
    value_path: tuple = ()  # the path of the verbatim value opened last

    def clone(self) -> Scanner:
        frames = [_Frame(f.kind, f.key, f.want_key) for f in self.stack]
        flags = (self.in_string, self.string_is_key, self.escaped, self.verbatim)
        return Scanner(self.paths, frames, *flags, bytearray(self.key), self.value_path)

    def signature(self) -> tuple:
        frames = tuple((f.kind, f.key, f.want_key) for f in self.stack)
        flags = (self.in_string, self.string_is_key, self.escaped, self.verbatim)
        return frames, flags, bytes(self.key)

    def feed(self, piece: bytes) -> list[Segment]:
        """Advance over a token's bytes; returns what it copied into verbatim values."""
        segments: list[Segment] = []
        data, continues = bytearray(), self.verbatim
        for b in piece:
            if not self.in_string:
                self._structure(b)
                if self.verbatim:
                    data, continues = bytearray(), False
                continue
            if self.escaped:
                self.escaped = False
            elif b == BACKSLASH:
                self.escaped = True
            elif b == QUOTE:
                if self.verbatim:
                    segments.append(Segment(bytes(data), continues, self.value_path, True))
                elif self.string_is_key and self.stack:
                    self.stack[-1].key = self.key.decode("utf-8", "replace")
                self.in_string = self.verbatim = False
                continue
            if self.string_is_key:
                self.key.append(b)
            elif self.verbatim:
                data.append(b)
        if self.verbatim and (data or continues is False):
            segments.append(Segment(bytes(data), continues, self.value_path))
        return segments

    def _structure(self, b: int) -> None:
        top = self.stack[-1] if self.stack else None
        if b == ord("{"):
            self.stack.append(_Frame("object"))
        elif b == ord("["):
            self.stack.append(_Frame("array", want_key=False))
        elif b in (ord("}"), ord("]")) and self.stack:
            self.stack.pop()
        elif b == ord(":") and top:
            top.want_key = False
        elif b == ord(",") and top and top.kind == "object":
            top.want_key = True
        elif b == QUOTE:
            self.in_string, self.escaped = True, False
            self.string_is_key = bool(top and top.kind == "object" and top.want_key)
            self.key.clear()
            self.verbatim = not self.string_is_key and self._path() in self.paths
            if self.verbatim:
                self.value_path = self._path()

    def _path(self) -> tuple[str, ...]:
        return tuple(f.key or "" if f.kind == "object" else ITEM for f in self.stack)


class TokenBytes:
    """The vocabulary by bytes, built once per tokenizer: which tokens are exactly these
    bytes, which close a JSON string after these bytes, and which have a quote inside."""

    def __init__(self, decoded_vocab: list[bytes], skip: set[int]):
        self.pieces: list[bytes] = []
        self.exact: dict[bytes, list[int]] = {}
        self.closing: dict[bytes, list[int]] = {}
        self.quoted: list[int] = []  # a quote with bytes after it: may open and copy
        self.ending: list[int] = []  # a quote last and only there: may open an empty value
        for token, piece in enumerate(decoded_vocab):
            piece = b"" if token in skip else bytes(piece)
            self.pieces.append(piece)
            if not piece:
                continue
            quote = _closing_quote(piece)
            if quote is None:
                self.exact.setdefault(piece, []).append(token)
            else:
                self.closing.setdefault(piece[:quote], []).append(token)
            if b'"' in piece[:-1]:
                self.quoted.append(token)
            elif piece.endswith(b'"'):
                self.ending.append(token)
        self.longest = max(map(len, self.exact), default=1)
        self._copies: dict[tuple, dict[int, list[Segment]]] = {}

    def copies(self, scanner: Scanner, ending: bool = False) -> dict[int, list[Segment]]:
        """token -> what it would copy into verbatim values from this scanner state, for the
        tokens with a quote inside (and, with `ending`, those that end with one: they may
        open a value), computed once per state and schema."""
        key = (scanner.paths, scanner.signature(), ending)
        found = self._copies.get(key)
        if found is None:
            found = {}
            for token in self.quoted + self.ending if ending else self.quoted:
                segments = scanner.clone().feed(self.pieces[token])
                if any(s.data or not s.continues for s in segments):
                    found[token] = segments
            if len(self._copies) >= STATES_KEPT:
                self._copies.pop(next(iter(self._copies)))  # oldest first
            self._copies[key] = found
        return found


def _closing_quote(piece: bytes) -> int | None:
    """Index of the first quote in `piece` that ends a JSON string (not escaped)."""
    escaped = False
    for i, b in enumerate(piece):
        if escaped:
            escaped = False
        elif b == BACKSLASH:
            escaped = True
        elif b == QUOTE:
            return i
    return None


class Grounding:
    """One row's verbatim constraint: follows the answer's tokens, and says which tokens may
    come next (`mask`). `bounds` (run/answer.verbatim_bounds): the longest a value at each
    path may be, in characters (an escape is one), for the values the grammar leaves
    unbounded (run/answer.grammar_schema)."""

    def __init__(
        self,
        vocab: TokenBytes,
        source: str,
        paths: tuple,
        bounds: dict | None = None,
        shapes: dict | None = None,
    ):
        self.vocab, self.source = vocab, source
        self.scanner = Scanner(paths)
        self.bounds = bounds or {}
        self.whole = _Copyable(*_escaped(source))
        self.shaped = {  # path -> its shape's values in the input (run/answer.verbatim_shapes)
            path: _Copyable.of_values(source, values)
            for path, (shape, nullable) in (shapes or {}).items()
            if (values := shape_values(source, shape)) or nullable  # else the whole input
        }
        self.closed_shapes = any(not c.starts for c in self.shaped.values())  # null only
        self.ends: list[int] | None = None  # inside a verbatim value: where its copy can end
        self.chars = 0  # inside a verbatim value: its characters so far
        self.pending = 0  # ...and the escape state after them (_json_chars)
        self._fresh: dict[tuple, list[int]] = {}  # path -> allowed tokens for an empty copy

    def _copyable(self, path: tuple) -> _Copyable:
        return self.shaped.get(path, self.whole)

    def mask(self) -> tuple[bool, list[int]] | None:
        """(True, ids): only these tokens; (False, ids): any token but these; None: any."""
        if self.ends is None:  # (a shaped value with nothing to copy may not even open)
            copies = self.vocab.copies(self.scanner, ending=self.closed_shapes)
            bad = [t for t, segments in copies.items() if not self._fits(segments)]
            return (False, bad) if bad else None
        allowed = self._continuations()
        copies = self.vocab.copies(self.scanner)
        return True, [t for t in allowed if t not in copies or self._fits(copies[t])]

    def feed(self, token: int) -> None:
        piece = self.vocab.pieces[token] if token < len(self.vocab.pieces) else b""
        for segment in self.scanner.feed(piece):
            if not segment.continues or self.ends is None:
                self.chars, self.pending = 0, 0
            added, self.pending = _json_chars(segment.data, self.pending)
            self.chars += added
            self.ends = self._advance(segment, self.ends)
        if not self.scanner.verbatim:
            self.ends = None

    def _room(self) -> int | None:
        """Characters the value being copied may still take (None: no bound)."""
        bound = self.bounds.get(self.scanner.value_path)
        return None if bound is None else bound - self.chars

    def _continuations(self) -> list[int]:
        """Tokens that continue the copy (within the value's bound), or close the value
        after continuing it."""
        room = self._room()
        unbounded = room is None or room >= self.vocab.longest  # no piece can overrun it
        path = self.scanner.value_path
        copyable = self._copyable(path)
        fresh = self.ends is copyable.starts and unbounded
        if fresh and path in self._fresh:
            return self._fresh[path]
        text, exact, closing = copyable.text, self.vocab.exact, self.vocab.closing
        # a quote closes the value only between characters: right after a backslash it is
        # an escaped quote (\"), a character the input may not have there
        ends_here = self.pending == 0 and any(map(copyable.may_end, self.ends))
        ids: set[int] = set(closing.get(b"", ())) if ends_here else set()
        for q in self.ends:
            for k in range(1, min(self.vocab.longest, len(text) - q) + 1):
                piece = text[q : q + k]
                if not unbounded and k > room and _json_chars(piece, self.pending)[0] > room:
                    break  # longer pieces only add characters
                ids.update(exact.get(piece, ()))
                if copyable.may_end(q + k):
                    ids.update(closing.get(piece, ()))
        allowed = sorted(ids)
        if fresh:
            self._fresh[path] = allowed
        return allowed

    def _fits(self, segments: list[Segment]) -> bool:
        """Whether a token's segments keep every value a piece of the input, within its bound."""
        ends, chars, pending = self.ends, self.chars, self.pending
        for segment in segments:
            if not segment.continues or ends is None:
                chars, pending = 0, 0
            added, pending = _json_chars(segment.data, pending)
            chars += added
            bound = self.bounds.get(segment.path)
            if bound is not None and chars > bound:
                return False
            ends = self._advance(segment, ends)
            if segment.closes:
                ends = list(filter(self._copyable(segment.path).may_end, ends))
            if ends == []:
                return False
        return True

    def _advance(self, segment: Segment, ends: list[int] | None) -> list[int]:
        """Where the copy can end after `segment` ([] = nowhere: not in the input)."""
        copyable = self._copyable(segment.path)
        data, text = segment.data, copyable.text
        if segment.continues and ends is not None:
            return [q + len(data) for q in ends if text.startswith(data, q)] if data else ends
        if not data:
            return copyable.starts
        found, at = [], text.find(data)
        while at >= 0:  # every occurrence that starts at a character
            if at in copyable.start_set:
                found.append(at + len(data))
            at = text.find(data, at + 1)
        return found


@dataclass
class _Copyable:
    """What a verbatim value may be a piece of: JSON-escaped bytes, the offsets where a copy
    may start, and where it may end (None: wherever a character starts or the text ends)."""

    text: bytes
    starts: list[int]
    ends: set[int] | None = None

    def __post_init__(self):
        self.start_set = set(self.starts)

    def may_end(self, at: int) -> bool:
        return self.ends is None or at in self.ends

    @classmethod
    def of_values(cls, source: str, values: dict) -> _Copyable:
        """Only the values of a shape in `source` (run/answer.shape_values: span -> values): a
        copy starts where one starts and ends where one ends, a NUL byte (never inside a JSON
        string's bytes) between the spans."""
        text, starts, ends = bytearray(), [], set()
        for (a, b), pairs in values.items():
            piece, offsets = _escaped(source[a:b])
            starts += sorted({len(text) + offsets[i - a] for i, _ in pairs})
            ends |= {len(text) + offsets[j - a] for _, j in pairs}
            text += piece + b"\0"
        return cls(bytes(text), starts, ends)


def _json_chars(data: bytes, pending: int = 0) -> tuple[int, int]:
    """Characters in a piece of a JSON string's inside, and the escape state after it: an
    escape (\\n, \\u00e9) is one character, a UTF-8 character one (its first byte counts,
    so one split across tokens counts once). `pending`: bytes of an escape still to come
    (-1: right after its backslash), so an escape split across tokens counts once too."""
    count = 0
    for b in data:
        if pending == -1:  # the byte after a backslash says how long the escape is
            pending = 4 if b == ord("u") else 0
        elif pending > 0:
            pending -= 1
        elif b == BACKSLASH:
            count, pending = count + 1, -1
        elif b & 0xC0 != 0x80:  # not a UTF-8 continuation byte
            count += 1
    return count, pending


def restrict(logits: torch.Tensor, row: int, mask: tuple[bool, list[int]] | None) -> None:
    """Apply a row's grounding mask (Grounding.mask) to its (already grammar-masked) logits
    (rows, vocab). Should it leave no token the grammar allows, the grammar alone decides
    this step."""
    if mask is None:
        return
    only, ids = mask
    index = torch.tensor(ids, dtype=torch.long, device=logits.device)
    if only:
        kept = logits[row, index]
        if torch.isfinite(kept).any():
            logits[row] = float("-inf")
            logits[row, index] = kept
        return
    left = logits[row].clone()
    left[index] = float("-inf")
    if torch.isfinite(left).any():
        logits[row] = left


def _escaped(source: str) -> tuple[bytes, list[int]]:
    """The source as the bytes of a JSON string's inside, and the offsets where each of its
    characters starts (and the end)."""
    text, starts = bytearray(), []
    for ch in source:
        starts.append(len(text))
        text += json.dumps(ch, ensure_ascii=False)[1:-1].encode("utf-8", "surrogatepass")
    starts.append(len(text))
    return bytes(text), starts


def token_bytes(opened) -> TokenBytes:
    """The opened run's vocabulary by bytes (built once, kept in OpenRun.cache)."""
    found = opened.cache.get("token_bytes")
    if found is None:
        from slmtune.infer.constrain import tokenizer_info

        info = tokenizer_info(opened)
        found = opened.cache["token_bytes"] = vocabulary_bytes(opened.tokenizer, info)
    return found


def vocabulary_bytes(tokenizer, info) -> TokenBytes:
    """TokenBytes of a tokenizer, from xgrammar's view of it (`info`: each token's bytes);
    special and stop tokens copy nothing."""
    skip = {*tokenizer.all_special_ids, *info.special_token_ids, *info.stop_token_ids}
    return TokenBytes(info.decoded_vocab, skip)


def grounding(opened, schema: dict | None, source: str | None) -> Grounding | None:
    """A row's verbatim constraint, or None when the schema marks nothing verbatim."""
    paths = verbatim_paths(schema)
    if not paths or source is None:
        return None
    bounds, shapes = verbatim_bounds(schema), verbatim_shapes(schema)
    return Grounding(token_bytes(opened), source, paths, bounds, shapes)
