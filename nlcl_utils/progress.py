"""Progress bars that respect ``TQDM_DISABLE`` everywhere, in a terminal and in a notebook.

tqdm's text bar reads ``TQDM_DISABLE`` from the environment, but its notebook (widget) bar,
which ``tqdm.auto`` picks inside Jupyter, does not; a widget bar in an executed notebook is
an output with random ids, so committed notebooks would change on every run. Use :func:`bar`
instead of ``tqdm`` directly.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from tqdm.auto import tqdm


def enabled(progress: bool = True) -> bool:
    """``progress``, unless the environment sets TQDM_DISABLE (to anything but ''/0/false/no)."""
    flag = os.environ.get("TQDM_DISABLE", "").strip().lower()
    return bool(progress) and flag in ("", "0", "false", "no")


def bar(iterable: Iterable | None = None, *, progress: bool = True, **kwargs) -> tqdm:
    """``tqdm.auto.tqdm(iterable, **kwargs)``, disabled when :func:`enabled` says so."""
    return tqdm(iterable, disable=not enabled(progress), **kwargs)
