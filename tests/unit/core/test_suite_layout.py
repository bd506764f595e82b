"""The suite itself: test modules must have unique basenames.

``tests/`` uses pytest's default (rootless, ``prepend``) import mode, so two test
files with one basename in different folders break collection of the whole suite
("import file mismatch"), which a run of one folder never shows.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

TESTS = Path(__file__).resolve().parents[2]


def test_every_test_module_basename_is_unique():
    names = Counter(path.name for path in TESTS.rglob("test_*.py"))
    assert [name for name, count in names.items() if count > 1] == []
