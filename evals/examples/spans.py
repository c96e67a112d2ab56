"""Example: interval merging that shrinks a range when a later interval lies inside it."""

from agentkit.evals.examples.spec import ExampleSpec

_INTERVALS_BASE = '''"""Closed integer intervals, as used for booked time slots and line ranges."""

from __future__ import annotations

from collections.abc import Iterable

Interval = tuple[int, int]


def normalize(interval: Interval) -> Interval:
    start, end = interval
    if end < start:
        raise ValueError(f"interval ends before it starts: {interval}")
    return start, end


def merge(intervals: Iterable[Interval]) -> list[Interval]:
    """Merge overlapping or touching intervals; the result is sorted and disjoint."""
    ordered = sorted(normalize(interval) for interval in intervals)
    merged: list[Interval] = []
    for start, end in ordered:
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return merged


def total_length(intervals: Iterable[Interval]) -> int:
    """Number of integer points covered by the intervals."""
    return sum(end - start + 1 for start, end in merge(intervals))
'''

_INTERVALS_FIXED = _INTERVALS_BASE.replace(
    "            merged[-1] = (merged[-1][0], end)\n",
    "            merged[-1] = (merged[-1][0], max(merged[-1][1], end))\n",
)

_TESTS_BASE = """import pytest

from spans.intervals import merge, total_length


def test_overlapping_intervals_merge():
    assert merge([(5, 8), (1, 3), (2, 6)]) == [(1, 8)]


def test_touching_intervals_merge():
    assert merge([(1, 3), (3, 5)]) == [(1, 5)]


def test_disjoint_intervals_stay_apart():
    assert merge([(10, 12), (1, 2)]) == [(1, 2), (10, 12)]


def test_empty_input():
    assert merge([]) == []


def test_reversed_interval_is_rejected():
    with pytest.raises(ValueError):
        merge([(3, 1)])


def test_total_length():
    assert total_length([(1, 3), (2, 4), (10, 10)]) == 5
"""

_NESTED_TESTS = """from spans.intervals import merge, total_length


def test_contained_interval_does_not_shrink_range():
    assert merge([(1, 10), (2, 3)]) == [(1, 10)]


def test_contained_then_overlapping():
    assert merge([(1, 10), (2, 3), (9, 12), (20, 21)]) == [(1, 12), (20, 21)]


def test_total_length_with_nested_intervals():
    assert total_length([(0, 99), (10, 20)]) == 100
"""

EXAMPLE = ExampleSpec(
    name="spans",
    number=48,
    version="1.4",
    problem_statement="""\
merge() loses coverage when one interval contains another

```python
>>> merge([(1, 10), (2, 3)])
[(1, 3)]
```

Points 4..10 disappear from the result, and `total_length` under-counts accordingly. We hit
this with a booking that spans a whole day plus a short meeting inside it.
Overlapping and touching intervals are merged correctly.
""",
    base_files={
        "pyproject.toml": '[project]\nname = "spans"\nversion = "1.4.0"\n',
        "spans/__init__.py": '"""Integer interval utilities."""\n',
        "spans/intervals.py": _INTERVALS_BASE,
        "tests/test_intervals.py": _TESTS_BASE,
    },
    fix_files={"spans/intervals.py": _INTERVALS_FIXED},
    test_files={
        "tests/test_intervals.py": _TESTS_BASE
        + "\n\ndef test_single_interval():\n    assert merge([(4, 4)]) == [(4, 4)]\n",
        "tests/test_nested.py": _NESTED_TESTS,
    },
    fail_to_pass=[
        "tests/test_nested.py::test_contained_interval_does_not_shrink_range",
        "tests/test_nested.py::test_contained_then_overlapping",
        "tests/test_nested.py::test_total_length_with_nested_intervals",
    ],
    pass_to_pass=[
        "tests/test_intervals.py::test_overlapping_intervals_merge",
        "tests/test_intervals.py::test_touching_intervals_merge",
        "tests/test_intervals.py::test_disjoint_intervals_stay_apart",
        "tests/test_intervals.py::test_empty_input",
        "tests/test_intervals.py::test_reversed_interval_is_rejected",
        "tests/test_intervals.py::test_total_length",
        "tests/test_intervals.py::test_single_interval",
    ],
)
