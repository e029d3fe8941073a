"""Fixtures shared by the test modules."""

import pytest
from throwaway_tree import write_tree


@pytest.fixture
def tree(tmp_path):
    """A throw-away repository tree with a good and a failing notebook (see throwaway_tree.py)."""
    return write_tree(tmp_path)
