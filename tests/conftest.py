"""Fixtures shared by the test modules, and the signal set-up of a test process."""

import signal

import pytest
from throwaway_tree import write_tree


def pytest_configure(config):
    """Behave as in a foreground terminal, whoever launched us.

    A shell starting a background job without job control (``cmd &`` in a script) makes it
    ignore SIGINT, Python then installs no KeyboardInterrupt handler, and child processes inherit
    the ignore. The Ctrl-C tests would then test the launcher, not our code: give this process
    Python's usual handler (children started from it get the default disposition back).
    """
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture
def tree(tmp_path):
    """A throw-away repository tree with a good and a failing notebook (see throwaway_tree.py)."""
    return write_tree(tmp_path)
