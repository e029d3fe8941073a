"""Worker processes for independent runs: how many cores, and a spawned pool that stops cleanly.

Used by :mod:`nlcl_utils.sweep` (batches of a grid) and :mod:`nlcl_utils.token_runs` (the cases of
a notebook section). Workers are *spawned* (no forked torch or Jupyter-kernel state) and run one
torch thread each; parallelism comes from the processes, one per core.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
from collections.abc import Callable, Sequence
from typing import Any


def available_cores() -> int:
    """Cores this process may use (its CPU affinity where the OS reports it)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def init_worker() -> None:
    """Pool worker: one torch thread; Ctrl-C is the parent's to handle (it terminates the pool)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = "1"
    import torch

    torch.set_num_threads(1)


def run_spawned(fn: Callable[[Any], Any], items: Sequence[Any], workers: int, on_result: Callable[[Any], None]) -> None:
    """Call ``on_result(fn(item))`` for every item, in completion order, on ``workers`` spawned processes.

    ``fn`` and the items must be picklable (``fn`` a module-level function). An exception in a
    worker, in ``on_result`` or a Ctrl-C terminates the pool at once and propagates; results
    already passed to ``on_result`` stay with the caller.
    """
    context = multiprocessing.get_context("spawn")
    pool = context.Pool(processes=max(1, min(workers, len(items))), initializer=init_worker)
    try:
        for result in pool.imap_unordered(fn, items):
            on_result(result)
        pool.close()
    except BaseException:
        pool.terminate()
        raise
    finally:
        pool.join()
