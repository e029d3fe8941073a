"""Safe publishing of regenerated outputs: a lock per output target and all-or-nothing swaps.

* :class:`RunLock`: an exclusive ``flock`` on ``build/locks/<target>.lock``. A second run on
  the same target fails at once with :class:`LockBusy`, whose message names the holder (pid,
  start time, command). The kernel drops the lock when its holder dies, however it dies, so
  there is never a stale lock to clean up by hand.
* :func:`publish`: replaces a set of files and directories by staged ones. The planned renames
  are written to a journal first (the commit point), then done with SIGINT/SIGTERM held back,
  so an interrupt cannot land in the middle; the old versions go to a trash directory that is
  removed at the end. Only a hard kill (SIGKILL, power loss) can stop it half-way, and then
  :func:`recover` (called at the start of the next run under the same lock) finishes the
  journal's renames, so every committed output ends up either all old or all new.
* :func:`check_folder` / :func:`check_output_file`: whether a folder (or a file's folder) is a
  place this process can write, checked by trying it; the commands call them before any work,
  not when writing results.

Staged files must live on the same filesystem as their targets (everything is under the
repository: ``build/`` next to ``notebooks/`` and ``figures/``), where ``rename`` is atomic.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

from nlcl_utils.checks import NlclError

HELD_SIGNALS = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}
# Set in the environment of the kernels of `nlcl figures`, the publisher: only they may write
# figures into a committed figures/ tree (see plotting.figure_dir).
PUBLISHER_ENV = "NLCL_PUBLISHER"


def check_folder(path: str | Path, name: str) -> None:
    """Raise ValueError naming ``name`` unless files can be written in folder ``path`` (created if missing).

    Tried rather than inferred from permission bits (which do not stop root, nor say anything
    about a read-only file system or /proc): an empty folder is created in ``path``, or in its
    nearest existing ancestor, and removed at once.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ValueError(f"{name}: {str(path)!r} is a file, not a folder; give a folder (created if missing)")
    base = path
    while not base.exists() and base != base.parent:
        base = base.parent
    if not base.is_dir():
        raise ValueError(f"{name}: {str(base)!r} is not a directory, so the folder {str(path)!r} cannot be created")
    try:
        os.rmdir(tempfile.mkdtemp(dir=base, prefix=".nlcl-write-check-"))
    except OSError as err:
        where = "is not writable" if base == path else f"cannot be created (nothing can be written in {str(base)!r})"
        raise ValueError(f"{name}: the folder {str(path)!r} {where}: {err.strerror}") from None


def check_output_file(path: Path | None, name: str = "out") -> None:
    """Raise ValueError naming ``name`` unless file ``path`` can be written (checked before compute, not after)."""
    if path is None:
        return
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{name}: {str(path)!r} is a directory; give a file name such as results.json")
    if path.parent.exists() and not path.parent.is_dir():
        raise ValueError(f"{name}: {str(path.parent)!r} is not a directory, so {str(path)!r} cannot be created")
    check_folder(path.parent, name)
    if path.exists() and not os.access(path, os.W_OK):
        raise ValueError(f"{name}: {str(path)!r} is not writable")


class LockBusy(NlclError, RuntimeError):
    """Another run holds the lock of this output target."""


class RunLock:
    """Exclusive, non-blocking lock of one output target (context manager)."""

    def __init__(self, path: Path, target: str):
        self.path, self.target = Path(path), target
        self._fd: int | None = None

    def __enter__(self) -> RunLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 4096).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise LockBusy(
                f"another `nlcl figures` run is writing {self.target} ({holder}); wait for it to finish "
                f"(or stop it), then run again. Nothing was executed."
            ) from None
        os.ftruncate(fd, 0)
        cmd = " ".join(sys.argv) if sys.argv else "?"
        os.write(fd, f"pid {os.getpid()}, started {time.strftime('%H:%M:%S')}, command: {cmd}\n".encode())
        self._fd = fd
        return self

    def __exit__(self, *exc) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


@contextlib.contextmanager
def signals_held():
    """Defer SIGINT/SIGTERM/SIGHUP until the block ends; they are raised again right after.

    Python handlers rather than a signal mask: Python runs handlers in the main thread whatever
    thread the kernel delivers a signal to, so only replacing the handlers holds them back in a
    process with other threads. Outside the main thread (where handlers cannot be set) this
    does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    previous = {sig: signal.signal(sig, lambda signum, frame: received.append(signum)) for sig in HELD_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for sig in dict.fromkeys(received):
            signal.raise_signal(sig)


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that a reader sees the old file or the new one, never a part.

    The text goes to a hidden temporary file beside ``path`` (named with this process's id, so
    concurrent writers never share one), is flushed to disk, then renamed over ``path``. Creates
    the parent folder.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def publish(moves: list[tuple[Path, Path]], journal: Path, trash: Path) -> None:
    """Replace each ``target`` by its staged ``source`` (files or directories), all or nothing.

    ``moves``: ``(source, target)`` pairs; sources must exist. ``journal``: where the plan is
    written (must not exist). ``trash``: a directory for the old versions, removed at the end.
    """
    for source, _ in moves:
        if not Path(source).exists():
            raise FileNotFoundError(f"publish: staged {source} is missing; nothing was published")
    plan = [
        {"source": str(s), "target": str(t), "old": str(Path(trash) / f"{i:03d}-{Path(t).name}")}
        for i, (s, t) in enumerate(moves)
    ]
    with signals_held():
        Path(trash).mkdir(parents=True, exist_ok=True)
        journal.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(journal, json.dumps({"moves": plan, "trash": str(trash)}, indent=1) + "\n")
        _apply(journal)


def _apply(journal: Path) -> None:
    """Do the journal's renames that are not done yet (a move is done once its source is gone)."""
    record = json.loads(journal.read_text())
    for move in record["moves"]:
        source, target, old = Path(move["source"]), Path(move["target"]), Path(move["old"])
        if not source.exists():
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists() or target.is_symlink():
            _remove(old)
            os.rename(target, old)
        os.rename(source, target)
    journal.unlink()
    shutil.rmtree(record["trash"], ignore_errors=True)


def recover(journal: Path) -> bool:
    """Finish a publish that a hard kill interrupted; returns whether there was one."""
    if not journal.exists():
        return False
    with signals_held():
        _apply(journal)
    return True
