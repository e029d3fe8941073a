"""Validation of notebook parameters: typos and bad values fail loudly, before any compute.

A notebook's parameters cell holds plain assignments (papermill injects overrides after it).
The next cell declares what each parameter may be and validates the notebook's globals::

    SPEC = {"n_inits": params.Int(min=1), "tau": params.Float(min=0, min_exclusive=True)}
    P = params.validate(globals(), SPEC)      # -> SimpleNamespace(n_inits=..., tau=...)

``validate`` raises :class:`ParameterError` naming the parameter and what is allowed when a
parameter is missing, has the wrong type or an impossible value, or when a global that is
not in SPEC looks like a parameter (a misspelled override such as ``n_init=5``).
"""

from __future__ import annotations

import ast
import dataclasses
import math
import types
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nlcl_utils.checks import NlclError, did_you_mean

NOTEBOOKS_DIR = Path(__file__).resolve().parents[2] / "notebooks"


class ParameterError(NlclError, ValueError):
    """A notebook parameter is unknown, missing, of the wrong type or out of range."""


class Spec:
    """Base class: ``check(name, value)`` returns the validated value or raises ParameterError."""

    def check(self, name: str, value: Any) -> Any:  # pragma: no cover - interface
        raise NotImplementedError

    def describe(self) -> str:  # pragma: no cover - interface
        raise NotImplementedError


def _range_text(lo, hi, lo_excl: bool, hi_excl: bool) -> str:
    parts = []
    if lo is not None:
        parts.append(f"{'>' if lo_excl else '>='} {lo}")
    if hi is not None:
        parts.append(f"{'<' if hi_excl else '<='} {hi}")
    return " and ".join(parts)


@dataclass(frozen=True)
class Int(Spec):
    """An integer (bools are rejected) within ``[min, max]``."""

    min: int | None = None
    max: int | None = None

    def describe(self) -> str:
        rng = _range_text(self.min, self.max, False, False)
        return "an integer" + (f" {rng}" if rng else "")

    def check(self, name: str, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ParameterError(
                f"parameter {name!r}: expected {self.describe()}, got {value!r} ({type(value).__name__})"
            )
        if (self.min is not None and value < self.min) or (self.max is not None and value > self.max):
            raise ParameterError(f"parameter {name!r}: expected {self.describe()}, got {value!r}")
        return value


@dataclass(frozen=True)
class Float(Spec):
    """A real number (ints accepted and converted) within the given bounds."""

    min: float | None = None
    max: float | None = None
    min_exclusive: bool = False
    max_exclusive: bool = False

    def describe(self) -> str:
        rng = _range_text(self.min, self.max, self.min_exclusive, self.max_exclusive)
        return "a finite number" + (f" {rng}" if rng else "")

    def check(self, name: str, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ParameterError(
                f"parameter {name!r}: expected {self.describe()}, got {value!r} ({type(value).__name__})"
            )
        value = float(value)
        bad = not math.isfinite(value)  # NaN and +-inf are never a valid setting
        if self.min is not None:
            bad |= value <= self.min if self.min_exclusive else value < self.min
        if self.max is not None:
            bad |= value >= self.max if self.max_exclusive else value > self.max
        if bad:
            raise ParameterError(f"parameter {name!r}: expected {self.describe()}, got {value!r}")
        return value


@dataclass(frozen=True)
class Bool(Spec):
    """True or False (not 0/1, not strings)."""

    def describe(self) -> str:
        return "True or False"

    def check(self, name: str, value: Any) -> bool:
        if not isinstance(value, bool):
            raise ParameterError(
                f"parameter {name!r}: expected {self.describe()}, got {value!r} ({type(value).__name__})"
            )
        return value


class Choice(Spec):
    """One of a fixed set of values (strings, numbers)."""

    def __init__(self, *values: Any):
        if not values:
            raise ValueError("Choice: give at least one allowed value")
        self.values = values

    def describe(self) -> str:
        return "one of " + ", ".join(repr(v) for v in self.values)

    def check(self, name: str, value: Any) -> Any:
        if value not in self.values or isinstance(value, bool) != isinstance(self.values[0], bool):
            hint = ""
            if isinstance(value, str):
                hint = did_you_mean(value, self.values)
            raise ParameterError(f"parameter {name!r}: expected {self.describe()}, got {value!r}{hint}")
        return value


@dataclass(frozen=True)
class Str(Spec):
    """Any string."""

    def describe(self) -> str:
        return "a string"

    def check(self, name: str, value: Any) -> str:
        if not isinstance(value, str):
            raise ParameterError(
                f"parameter {name!r}: expected {self.describe()}, got {value!r} ({type(value).__name__})"
            )
        return value


@dataclass(frozen=True)
class List(Spec):
    """A list (or tuple) of items that each satisfy ``item``, with at least ``min_len`` items."""

    item: Spec
    min_len: int = 1
    max_len: int | None = None

    def describe(self) -> str:
        size = f"at least {self.min_len}" + (f" and at most {self.max_len}" if self.max_len is not None else "")
        return f"a list of {size} items, each {self.item.describe()}"

    def check(self, name: str, value: Any) -> list:
        if not isinstance(value, (list, tuple)):
            raise ParameterError(
                f"parameter {name!r}: expected {self.describe()}, got {value!r} ({type(value).__name__})"
            )
        if len(value) < self.min_len or (self.max_len is not None and len(value) > self.max_len):
            raise ParameterError(f"parameter {name!r}: expected {self.describe()}, got {len(value)} items")
        return [self.item.check(f"{name}[{i}]", v) for i, v in enumerate(value)]


# Globals a Jupyter/IPython namespace has that are never parameters.
_NOT_PARAMETERS = {"In", "Out", "get_ipython", "exit", "quit", "open", "SPEC", "P"}


def _looks_like_parameter(name: str, value: Any) -> bool:
    if name.startswith("_") or name in _NOT_PARAMETERS:
        return False
    if isinstance(value, (types.ModuleType, types.FunctionType, types.BuiltinFunctionType, type)):
        return False
    return isinstance(value, (bool, int, float, str, list, tuple, dict, type(None)))


def validate(namespace: Mapping[str, Any], spec: Mapping[str, Spec]) -> types.SimpleNamespace:
    """Check a notebook's parameters against ``spec`` and return them as a namespace.

    ``namespace`` is the notebook's ``globals()`` right after the parameters cell (and
    papermill's injected overrides). Every name of ``spec`` must be present and valid; a
    parameter-like global (number, string, bool, list) that spec does not name is reported
    as unknown, with the closest allowed name. Raises :class:`ParameterError`.
    """
    unknown = sorted(n for n, v in namespace.items() if n not in spec and _looks_like_parameter(n, v))
    if unknown:
        name = unknown[0]
        hint = did_you_mean(name, spec)
        raise ParameterError(f"unknown parameter {name!r}{hint} Allowed parameters: {', '.join(sorted(spec))}")
    values = {}
    for name, rule in spec.items():
        if name not in namespace:
            raise ParameterError(f"parameter {name!r} is missing: it must be {rule.describe()}")
        values[name] = rule.check(name, namespace[name])
    return types.SimpleNamespace(**values)


@dataclass(frozen=True)
class OrNone(Spec):
    """``None`` or a value satisfying ``item``."""

    item: Spec

    def describe(self) -> str:
        return f"None or {self.item.describe()}"

    def check(self, name: str, value: Any) -> Any:
        return None if value is None else self.item.check(name, value)


def infer_spec(name: str, default: Any) -> Spec:
    """The obvious specification of a parameter from its default value.

    bool -> :class:`Bool`, int -> :class:`Int`, float -> :class:`Float` (finite, ints accepted),
    str -> :class:`Str`, non-empty list/tuple -> :class:`List` of the items' common spec (a list
    mixing ints and floats is a list of floats). Ranges are never guessed: give them
    explicitly. Raises ValueError when the default says nothing about the type (None, an empty
    list, a dict), naming the parameter.
    """
    if isinstance(default, bool):
        return Bool()
    if isinstance(default, int):
        return Int()
    if isinstance(default, float):
        return Float()
    if isinstance(default, str):
        return Str()
    if isinstance(default, (list, tuple)) and default:
        kinds = {type(v) for v in default}
        if kinds <= {int, float} and float in kinds:
            return List(Float())
        if len(kinds) == 1:
            return List(infer_spec(f"{name}[0]", default[0]))
    raise ValueError(
        f"parameter {name!r}: cannot infer a type from its default {default!r}; give an explicit spec in ranges="
    )


def specs_from_defaults(defaults: Mapping[str, Any], ranges: Mapping[str, Spec] | None = None) -> dict[str, Spec]:
    """One spec per parameter: ``ranges[name]`` where given, else :func:`infer_spec` of its default."""
    ranges = dict(ranges or {})
    unknown = sorted(set(ranges) - set(defaults))
    if unknown:
        raise ValueError(f"ranges: {unknown} are not parameters of this notebook; parameters: {', '.join(defaults)}")
    return {name: ranges[name] if name in ranges else infer_spec(name, value) for name, value in defaults.items()}


def notebook_defaults(name: str, notebooks_dir: Path = NOTEBOOKS_DIR) -> dict[str, Any]:
    """The parameters cell of ``notebooks_dir/<name>.py`` as {parameter: default value} (read, not executed)."""
    import jupytext

    nb = jupytext.read(Path(notebooks_dir) / f"{name}.py")
    for cell in nb.cells:
        if cell.cell_type == "code" and "parameters" in cell.metadata.get("tags", []):
            values = {}
            for node in ast.parse(cell.source).body:
                if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                    values[node.targets[0].id] = ast.literal_eval(node.value)
            return values
    raise ParameterError(f"notebook {name}: no cell tagged 'parameters'")


def ranges_from(settings: type, names: Iterable[str], prefix: str = "") -> dict[str, Spec]:
    """Parameter ranges of a notebook taken from a settings class's declared bounds.

    ``names`` are field names of ``settings`` (e.g. :class:`nlcl_utils.engine.train.TokenConfig`);
    the notebook parameter is ``prefix + name``. An int field gives :class:`Int`, a float field
    :class:`Float`, each with the field's ``low``/``high`` bounds; a field with choices gives
    :class:`Choice`.
    """
    fields = {f.name: f for f in dataclasses.fields(settings)}
    out: dict[str, Spec] = {}
    for name in names:
        if name not in fields:
            raise ValueError(f"names: {settings.__name__} has no field {name!r}{did_you_mean(name, fields)}")
        f = fields[name]
        low, high, low_open, high_open = f.metadata.get("bounds", (None, None, False, False))
        kind = str(f.type).replace(" | None", "")
        if f.metadata.get("choices"):
            out[prefix + name] = Choice(*f.metadata["choices"])
        elif kind == "int":
            out[prefix + name] = Int(min=low, max=high)
        elif kind == "float":
            out[prefix + name] = Float(min=low, max=high, min_exclusive=low_open, max_exclusive=high_open)
        else:
            raise ValueError(f"names: field {name!r} of {settings.__name__} is a {kind}, not a number or a choice")
    return out
