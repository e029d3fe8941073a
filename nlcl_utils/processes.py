"""Worker processes for independent runs: how many cores, and a spawned pool that stops cleanly.

Used by :mod:`nlcl_utils.experiments.sweep` (batches of a grid) and
:mod:`nlcl_utils.experiments.token_runs` (the cases of a notebook section). Workers are *spawned*
(no forked torch or Jupyter-kernel state) and run one torch thread each; parallelism comes from
the processes, one per core. :func:`stop_on_signals`
makes a command stop on Ctrl-C even when it was started with SIGINT ignored.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import threading
from collections.abc import Callable, Sequence
from typing import Any


def available_cores() -> int:
    """Cores this process may use (its CPU affinity where the OS reports it)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


class Stopped(KeyboardInterrupt):
    """Raised by :func:`stop_on_signals` when SIGINT, SIGTERM or SIGHUP arrives; ``signum`` says which."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


@contextlib.contextmanager
def stop_on_signals():
    """Within the block, SIGINT and SIGTERM (and SIGHUP unless ignored) raise :class:`Stopped`.

    A shell script's background job (``cmd &``) starts with SIGINT ignored, and Python then
    installs no KeyboardInterrupt handler, so Ctrl-C or ``kill -INT`` would be ignored and the
    command would run to its end. Like ``nlcl figures`` (:class:`nlcl_utils.pipeline.regenerate.Stop`),
    this installs handlers whatever the inherited disposition; an ignored SIGHUP (``nohup``) is
    left ignored on purpose. The previous handlers come back when the block ends. Outside the
    main thread (where handlers cannot be set) this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handle(signum, frame):
        raise Stopped(signum)

    wanted = [signal.SIGINT, signal.SIGTERM]
    if signal.getsignal(signal.SIGHUP) != signal.SIG_IGN:
        wanted.append(signal.SIGHUP)
    previous = {sig: signal.signal(sig, handle) for sig in wanted}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


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


def check_workers(workers: int | None) -> int:
    """``workers`` as a process count: None means one per core; otherwise an integer >= 1."""
    if workers is None:
        return available_cores()
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers: must be an integer >= 1 (or None for every core), got {workers!r}")
    return workers


def map_ordered(
    fn: Callable[[Any], Any],
    items: Sequence[Any],
    workers: int | None = None,
    *,
    progress: bool = True,
    desc: str = "runs",
) -> list[Any]:
    """``[fn(item) for item in items]``, on ``workers`` spawned processes (None: one per core).

    With one worker or one item everything runs in this process. Results come back in input
    order whatever order the workers finish in; a progress bar counts finished items. ``fn`` must
    be a module-level function, and items and results picklable (see :func:`run_spawned`).
    """
    from nlcl_utils.progress import bar  # local import: keeps this module free of tqdm for workers

    items = list(items)
    workers = check_workers(workers)
    results: list[Any] = [None] * len(items)
    with bar(total=len(items), desc=desc, progress=progress) as counter:
        if min(workers, len(items)) <= 1:
            for index, item in enumerate(items):
                results[index] = fn(item)
                counter.update()
            return results

        def store(indexed: tuple[int, Any]) -> None:
            results[indexed[0]] = indexed[1]
            counter.update()

        run_spawned(_indexed_call, [(fn, index, item) for index, item in enumerate(items)], workers, store)
    return results


def _indexed_call(job: tuple[Callable[[Any], Any], int, Any]) -> tuple[int, Any]:
    fn, index, item = job
    return index, fn(item)
