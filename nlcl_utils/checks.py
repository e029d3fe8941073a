"""Checks of user input shared by every module: one error base, one wording.

Every message starts with the name of the parameter at fault and says what is allowed, so a
command can print it on one line (``nlcl tokens: beta: must be a number >= 1, got 0.5``).

* :class:`NlclError`: the base of the package's own errors; a caller may catch it to catch any of
  them. :class:`SettingError` (a :class:`ValueError` too) is what the checks below raise.
* :func:`require_int`, :func:`require_number`, :func:`require_bool`, :func:`require_choice`:
  return the value (as a plain int / float / bool / the choice) or raise :class:`SettingError`.
* :func:`did_you_mean`: the "; did you mean 'x'?" hint for a misspelled name.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable
from numbers import Integral, Real


class NlclError(Exception):
    """Base of the errors this package raises about its input, its files or its runs."""


class SettingError(NlclError, ValueError):
    """A parameter has the wrong type or a value outside what is allowed."""


def did_you_mean(word: str, options: Iterable[str], cutoff: float = 0.6) -> str:
    """``"; did you mean 'x'?"`` for the closest of ``options``, or ``""`` when none is close."""
    close = difflib.get_close_matches(str(word), [str(o) for o in options], n=1, cutoff=cutoff)
    return f"; did you mean {close[0]!r}?" if close else ""


def require_int(name: str, value: object, low: int | None = None, high: int | None = None, rule: str = "") -> int:
    """``value`` as an int in [low, high] (either bound may be None); ``rule`` explains the bounds."""
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise SettingError(f"{name}: must be an integer, got {value!r}")
    if (low is not None and value < low) or (high is not None and value > high):
        if high is None:
            span = f">= {low}"
        elif low is None:
            span = f"<= {high}"
        else:
            span = f"in [{low}, {high}]"
        raise SettingError(f"{name}: must be an integer {span}{rule}, got {value}")
    return int(value)


def require_number(
    name: str,
    value: object,
    low: float | None = None,
    high: float | None = None,
    *,
    low_open: bool = False,
    high_open: bool = False,
    rule: str = "",
) -> float:
    """``value`` as a finite float within the bounds (``low_open``/``high_open``: bound excluded)."""
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(float(value)):
        raise SettingError(f"{name}: must be a finite number, got {value!r}")
    value = float(value)
    too_low = low is not None and (value <= low if low_open else value < low)
    too_high = high is not None and (value >= high if high_open else value > high)
    if too_low or too_high:
        parts = []
        if low is not None:
            parts.append(f"{'>' if low_open else '>='} {low:g}")
        if high is not None:
            parts.append(f"{'<' if high_open else '<='} {high:g}")
        raise SettingError(f"{name}: must be a number {' and '.join(parts)}{rule}, got {value:g}")
    return value


def require_bool(name: str, value: object) -> bool:
    """``value`` if it is True or False (not 0/1, not a string)."""
    if not isinstance(value, bool):
        raise SettingError(f"{name}: must be True or False, got {value!r}")
    return value


def require_choice(name: str, value: object, allowed: Iterable[str]) -> str:
    """``value`` if it is one of ``allowed``; the error lists them and suggests the closest."""
    allowed = tuple(allowed)
    if value not in allowed:
        hint = did_you_mean(value, allowed) if isinstance(value, str) else ""
        raise SettingError(f"{name}: unknown {value!r}; allowed: {', '.join(map(str, allowed))}{hint}")
    return value  # type: ignore[return-value]
