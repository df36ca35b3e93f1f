"""Command-line options generated from the typed configs (config.py).

`@config_options(TrainConfig)` gives a typer command one `--flag` per config field, with the
field's type, description and default: a field added to the config is a flag at once, and
the help can never drift from the defaults. The command receives the validated config as
one argument (`cfg`); flags the user did not give stay unset, so a YAML file (`--config`)
can supply them and flags win over it. Validation reports every problem at once, by flag.
"""

from __future__ import annotations

import functools
import inspect
import types
import typing
from collections.abc import Callable, Iterable

import typer
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from rich.markup import escape

from slmtune.config import load_config


def config_options(
    cls: type[BaseModel],
    *,
    fields: Iterable[str] | None = None,
    into: str = "cfg",
    build: bool = True,
) -> Callable:
    """Decorate a typer command: add `cls`'s fields (or only `fields`) as options and pass
    the validated config as the parameter `into` (with build=False: the dict of the flags
    given, for a command that merges them with a YAML file itself)."""
    names = list(fields or cls.model_fields)

    def decorate(fn: Callable) -> Callable:
        signature = inspect.signature(fn)
        own = [p for p in signature.parameters.values() if p.name != into]
        generated = [_parameter(name, cls.model_fields[name]) for name in names]

        @functools.wraps(fn)
        def command(*args, **kwargs):
            given = {n: kwargs.pop(n) for n in names}
            flags = {k: v for k, v in given.items() if v is not None}
            kwargs[into] = load_config(cls, None, flags) if build else flags
            return fn(*args, **kwargs)

        command.__signature__ = signature.replace(parameters=[*own, *generated])
        command.__annotations__ = {
            **{k: v for k, v in fn.__annotations__.items() if k != into},
            **{p.name: p.annotation for p in generated},
        }
        return command

    return decorate


def _parameter(name: str, info: FieldInfo) -> inspect.Parameter:
    kind, choices = _cli_type(info.annotation)
    extra = info.json_schema_extra or {}
    decls = extra.get("flag") or "--" + name.replace("_", "-")
    if kind is bool and "/" not in decls:
        decls = f"{decls}/--no-{decls.removeprefix('--')}"
    help_text = info.description or ""
    if choices:
        help_text += f" [{' | '.join(choices)}]"
    if not info.is_required() and info.default is not None:
        help_text += f"  [default: {_show(info.default)}]"
    elif info.is_required():
        help_text += "  [required]"
    # typer renders help with rich, where [...] would be read as markup
    option = typer.Option(None, decls, help=escape(help_text))  # None: not given by the user
    return inspect.Parameter(
        name, inspect.Parameter.KEYWORD_ONLY, default=option, annotation=kind | None
    )


def _cli_type(annotation) -> tuple[type, list[str]]:
    """The type typer parses a field as: Literal -> str (the config validates the choice),
    `X | None` -> X."""
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return str, [str(a) for a in typing.get_args(annotation)]
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in typing.get_args(annotation) if a is not type(None)]
        return _cli_type(inner[0])
    return annotation, []


def _show(value) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    return str(value)
