"""Settings records: each field says once its default, what it means and how it is given on a
command line.

A settings class is a frozen dataclass whose fields are made with :func:`setting`; the field's
``help`` is its documentation, and :func:`add_flags` turns the fields into ``argparse`` flags
(``per_location`` -> ``--per-location``; booleans as ``--bn / --no-bn``; choices listed), so the
flags of ``nlcl tokens`` cannot drift from the defaults of the Python API. Records stay flat
(one level of fields), which keeps cache keys and grid files simple.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
from collections.abc import Callable, Iterable
from typing import Any

from nlcl_utils.checks import require_bool, require_choice, require_int, require_number


def setting(
    default: Any,
    help: str,
    *,
    choices: Iterable[str] | None = None,
    flag: bool = True,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
) -> Any:
    """A dataclass field with its documentation and its allowed values.

    ``choices`` or the bounds ``low``/``high`` (``*_open``: the bound itself excluded) say what is
    allowed; :func:`check_fields` checks them and notebooks take their parameter ranges from them.
    ``flag=False``: no command-line flag (API only).
    """
    meta = {
        "help": help,
        "flag": flag,
        "choices": tuple(choices) if choices is not None else None,
        "bounds": (low, high, low_open, high_open),
    }
    return dataclasses.field(default=default, metadata=meta)


def field_kind(f: dataclasses.Field) -> str:
    """``"int"``, ``"float"``, ``"bool"``, ``"str"`` or ``"other"`` from a field's annotation (``| None`` ignored)."""
    name = str(f.type).replace(" | None", "")
    return name if name in ("int", "float", "bool", "str") else "other"


def check_fields(obj: Any, fields: Iterable[dataclasses.Field] | None = None) -> None:
    """Raise SettingError naming the first of ``fields`` (default: all) of ``obj`` outside its
    declared type, choices or bounds. A field whose default is None may be None. Cross-field
    rules stay with the class."""
    for f in dataclasses.fields(obj) if fields is None else fields:
        if "bounds" not in f.metadata:
            continue
        value, kind = getattr(obj, f.name), field_kind(f)
        if value is None and f.default is None:
            continue
        low, high, low_open, high_open = f.metadata["bounds"]
        if f.metadata["choices"] is not None:
            require_choice(f.name, value, f.metadata["choices"])
        elif kind == "bool":
            require_bool(f.name, value)
        elif kind == "int":
            require_int(f.name, value, low, high)
        elif kind == "float":
            require_number(f.name, value, low, high, low_open=low_open, high_open=high_open)


def finite_float(text: str) -> float:
    """argparse type: a finite real number (rejects nan, inf and overflowing literals like 1e999)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def finite_floats(text: str) -> tuple[float, ...]:
    """argparse type: comma-separated finite numbers."""
    return tuple(finite_float(x) for x in text.split(","))


def _parser_type(annotation: str) -> Callable[[str], Any]:
    kinds = {"int": int, "float": finite_float, "str": str}
    if "tuple[float" in annotation:
        return finite_floats
    for name, kind in kinds.items():
        if annotation.replace(" | None", "") == name:
            return kind
    raise TypeError(f"no command-line type for a field annotated {annotation!r}")


def flag_fields(cls: type) -> list[dataclasses.Field]:
    """The fields of settings class ``cls`` that have a command-line flag, in declaration order."""
    return [f for f in dataclasses.fields(cls) if f.metadata.get("flag")]


def add_flags(group: argparse._ActionsContainer, cls: type, names: Iterable[str]) -> None:
    """Add one flag per field of ``cls`` in ``names`` to ``group`` (defaults from ``cls()``)."""
    fields = {f.name: f for f in flag_fields(cls)}
    defaults = cls()
    for name in names:
        f = fields[name]
        option = "--" + name.replace("_", "-")
        default = getattr(defaults, name)
        help_text = f.metadata["help"]
        if f.type == "bool":
            group.add_argument(option, action=argparse.BooleanOptionalAction, default=default, help=help_text)
        elif f.metadata["choices"] is not None:
            group.add_argument(option, choices=f.metadata["choices"], default=default, help=help_text)
        else:
            kind = _parser_type(str(f.type))
            group.add_argument(option, type=kind, default=default, help=help_text)


def from_args(cls: type, args: argparse.Namespace) -> Any:
    """An instance of ``cls`` from parsed flags: every flag named like a field sets it."""
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in vars(args).items() if k in names})


class DefaultsHelp(argparse.ArgumentDefaultsHelpFormatter):
    """Help that shows each flag's default, except where there is none to show (None, a switch)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        if action.default is None or action.default is False and action.nargs == 0:
            return action.help or ""
        return super()._get_help_string(action)
