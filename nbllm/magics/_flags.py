"""Magic flags generated from config dataclasses, so that each option is declared once.

    @flags(SFTConfig, RunOptions, exclude=("model", "data"), aliases={"format": "-f"},
           extra=[argument("--model", "-m", ...)])
    def sft_magic(self, line, cell=None):
        args = parse_argstring(sft_magic, line)
        options = given(args, SFTConfig)          # only the flags the user gave

A field `max_steps: int | None` becomes `--max-steps N` (type=int); a bool becomes a switch
(`--compile`; one that defaults to True becomes `--no-NAME`, e.g. `--no-packing`); a
`Literal[...]` becomes `choices`; a float rejects nan and inf. The help is the field's
metadata["help"] with its default appended. Every generated flag defaults to None, so that
only the flags given reach the config (whose own defaults apply; --resume merges the given
ones into a saved config). A field without a default is a required flag.
"""

from __future__ import annotations

import re

import argparse
import dataclasses
import math
import types
import typing
from typing import Literal

from IPython.core.magic_arguments import argument, magic_arguments


def variable_name(text: str) -> str:
    """--out's value: a name a result can be bound to (checked before anything runs)."""
    import keyword

    text = unquote(text)
    if not text.isidentifier() or keyword.iskeyword(text):
        raise argparse.ArgumentTypeError(
            f"'{text}' is not a valid variable name (letters, digits and _, not starting with a digit)"
        )
    return text


OUT = argument("--out", "-o", default=None, type=variable_name, help="bind the result to this variable")


def finite_float(text: str) -> float:
    """argparse type for float flags: a number, never nan or inf."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def flag_name(name: str) -> str:
    return "--" + name.replace("_", "-")


def _bare(tp):
    """X | None -> X."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        rest = [a for a in typing.get_args(tp) if a is not type(None)]
        return rest[0] if len(rest) == 1 else tp
    return tp


def _help(f: dataclasses.Field) -> str:
    text = f.metadata.get("help", "")
    if (
        f.default is not dataclasses.MISSING
        and f.default is not None
        and not isinstance(f.default, bool)
        and "default" not in text
    ):
        text += f" (default: {f.default})"
    return text


def field_flag(f: dataclasses.Field, tp, aliases=()) -> tuple[tuple[str, ...], dict]:
    """The add_argument(*names, **kwargs) of one dataclass field."""
    tp = _bare(tp)
    names = (flag_name(f.name), *aliases)
    kwargs = {"dest": f.name, "default": None, "help": _help(f)}
    if tp is bool:
        if f.default is True:
            names = (flag_name("no_" + f.name),)
            kwargs.update(action="store_false", help=f.metadata.get("no_help") or f"turn off: {kwargs['help']}")
        else:
            kwargs["action"] = "store_true"
    elif typing.get_origin(tp) is Literal:
        kwargs["choices"] = list(typing.get_args(tp))
    elif tp in (int, float):
        kwargs.update(type=int if tp is int else finite_float, metavar="N" if tp is int else "F")
    if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
        kwargs["required"] = True
    return names, kwargs


def field_flags(*classes, aliases: dict | None = None, exclude=(), labels: dict | None = None):
    """(names, kwargs) per field of the classes, in order. A field several classes share is one
    flag, whose help joins theirs where they differ; labels={IndexOptions: "index"} prefixes
    the help a labelled class alone gives with "index: "."""
    aliases, labels = aliases or {}, labels or {}
    out: dict[str, tuple[tuple[str, ...], dict]] = {}
    owners: dict[str, list[tuple[type, str]]] = {}
    for cls in classes:
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            if f.name in exclude:
                continue
            alias = aliases.get(f.name, ())
            names, kwargs = field_flag(f, hints[f.name], (alias,) if isinstance(alias, str) else alias)
            out.setdefault(f.name, (names, kwargs))
            owners.setdefault(f.name, []).append((cls, kwargs["help"]))
    for name, (names, kwargs) in out.items():
        helps = {}  # help -> the label of the classes giving it (None: some unlabelled class)
        for cls, text in owners[name]:
            label = labels.get(cls)
            helps[text] = label if helps.get(text, label) == label else None
        kwargs["help"] = "; ".join(f"{label}: {text}" if label else text for text, label in helps.items())
    return list(out.values())


def flags(*classes, extra=(), after=(OUT,), aliases: dict | None = None, exclude=(), labels=None, name=None):
    """Decorate a magic with magic_arguments: the `extra` hand-written argument(...)s first, then
    one flag per field of `classes`, then `after` (--out/-o by default)."""
    generated = [
        argument(*names, **{k: v.replace("%", "%%") if k == "help" else v for k, v in kwargs.items()})
        for names, kwargs in field_flags(*classes, aliases=aliases, exclude=exclude, labels=labels)
    ]

    def decorate(func):
        for deco in reversed([*extra, *generated, *after]):  # magic_arguments reads them bottom-up
            func = deco(func)
        func = magic_arguments(name)(func)
        func.parser.parse_argstring = _unquoting(func.parser)
        return func

    return decorate


def unquote(token: str) -> str:
    """'a b' or "a b" -> a b, also after --flag=; anything else as it is (Windows backslashes too)."""
    flag, eq, value = token.partition("=") if token.startswith("-") else ("", "", token)
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        value = value[1:-1]
    return f"{flag}{eq}{value}"


def _unquoting(parser):
    """IPython splits a magic's line non-POSIX, so a quoted value keeps its quotes: `--data
    "/content/drive/My Drive/x.jsonl"` (Colab's Drive) would name a file with quotes in its
    name. Split the same way, then take the quotes off each value."""
    from IPython.utils.process import arg_split

    def parse_argstring(argstring, *, partial=False):
        argstring = re.sub(r"(^|\s)(--?[\w-]+)=([\"'])", r"\1\2 \3", argstring)  # --data="a b" as --data "a b"
        argv = [unquote(t) for t in arg_split(argstring, posix=False, strict=not partial)]
        return parser.parse_known_args(argv) if partial else parser.parse_args(argv)

    return parse_argstring


def given(args, *classes, exclude=()) -> dict:
    """The fields of `classes` the user gave a flag for: {field: value}."""
    names = [f.name for cls in classes for f in dataclasses.fields(cls) if f.name not in exclude]
    return {n: getattr(args, n) for n in names if getattr(args, n, None) is not None}


def build(cls, args, **more):
    """cls from the flags given (its own defaults for the rest) and `more`."""
    return cls(**{**given(args, cls, exclude=tuple(more)), **more})


def option_names(magic_func) -> dict[str, str]:
    """{dest: '--long-flag'} of a magic's parser (a switch shows as it is typed: --no-generate)."""
    return {a.dest: max(a.option_strings, key=len) for a in magic_func.parser._actions if a.option_strings}
