"""argparse value checks shared by the build tools' command lines (train, export and the checks)."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from dataclasses import field, fields
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


def _checked(convert: Callable[[str], Any], ok: Callable[[Any], bool], what: str,
             rule: str) -> Callable[[str], Any]:
    """An argparse type: ``convert`` the text (else "is not WHAT"), then ``ok`` or "RULE"."""
    def check(text: str) -> Any:
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
        if not ok(value):
            raise argparse.ArgumentTypeError(f"{text} {rule}")
        return value

    return check


SEED_MAX = 2**32 - 1  # numpy's and TensorFlow's seeds are unsigned 32-bit

# argparse types for the build tools' flags
positive_int = _checked(int, lambda v: v >= 1, "a whole number", "must be at least 1")
positive_float = _checked(float, lambda v: math.isfinite(v) and v > 0.0, "a number",
                          "must be a finite number above 0")
non_negative_float = _checked(float, lambda v: math.isfinite(v) and v >= 0.0, "a number",
                              "must be a finite number, 0 or more")
seed = _checked(int, lambda v: 0 <= v <= SEED_MAX, "a whole number", f"must be in 0..{SEED_MAX}")
fraction = _checked(float, lambda v: 0.0 <= v < 1.0, "a number", "must be in [0, 1)")


def option(default, help: str, **flag: Any):
    """A config dataclass field that is also a flag: ``--name-with-dashes``, its help and default.

    ``flag`` passes ``type=``, ``choices=`` or ``metavar=`` to argparse; without them it follows
    the field's annotation (int, float, str, Path; ``X | None`` as X); a bool field is a switch,
    a ``bool | None`` field a pair (``--name``, ``--no-name``) that is None when neither is given.
    """
    return field(default=default, metadata={"help": help, **flag})


def parse(config: type[T], argv: list[str] | None, prog: str, description: str,
          epilog: str | None = None) -> T:
    """The command line -> a ``config`` dataclass whose flag fields are made with ``option``."""
    p = argparse.ArgumentParser(prog=prog, description=description, epilog=epilog,
                                formatter_class=HelpFormatter)
    add_options(p, config)
    return config(**vars(p.parse_args(argv)))


def add_options(p: argparse.ArgumentParser, config: type) -> None:
    """One flag per ``option`` field of the dataclass ``config``, in field order."""
    for f in fields(config):
        if "help" not in f.metadata:
            continue
        kwargs = dict(f.metadata)
        if f.type in (bool, "bool"):
            p.add_argument(f"--{f.name.replace('_', '-')}", action="store_true", **kwargs)
            continue
        if f.type == "bool | None":  # --name / --no-name; neither leaves None (a default to fill)
            p.add_argument(f"--{f.name.replace('_', '-')}", action=argparse.BooleanOptionalAction,
                           default=None, **kwargs)
            continue
        if "type" not in kwargs and "choices" not in kwargs:
            kwargs["type"] = _TYPES[str(f.type).removesuffix(" | None")]
        p.add_argument(f"--{f.name.replace('_', '-')}", default=f.default, **kwargs)


_TYPES = {"int": int, "float": float, "str": str, "Path": Path}


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows each flag's default, unless its help already explains it ("(default: ...)")."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        return text if "(default:" in text else super()._get_help_string(action)
