"""Example: an off-by-one in a pagination helper (page count when the total divides evenly)."""

from agentkit.evals.examples.spec import ExampleSpec

_INIT = '''"""Small pagination helpers for list endpoints."""

from pagekit.paginate import Page, PageOutOfRange, page_count, paginate

__all__ = ["Page", "PageOutOfRange", "page_count", "paginate"]
'''

_PAGINATE_BASE = '''"""Split a sequence into numbered pages (1-based, as shown to users)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, Sequence, TypeVar

T = TypeVar("T")


class PageOutOfRange(IndexError):
    """The requested page does not exist."""


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    number: int
    total_pages: int

    @property
    def has_next(self) -> bool:
        return self.number < self.total_pages

    @property
    def has_previous(self) -> bool:
        return self.number > 1


def page_count(total: int, per_page: int) -> int:
    """How many pages ``total`` items fill; an empty listing still has one (empty) page."""
    if per_page < 1:
        raise ValueError("per_page must be at least 1")
    if total < 0:
        raise ValueError("total cannot be negative")
    return total // per_page + 1


def paginate(items: Sequence[T], page: int, per_page: int = 20) -> Page[T]:
    """Return page number ``page`` of ``items``."""
    pages = page_count(len(items), per_page)
    if page < 1 or page > pages:
        raise PageOutOfRange(f"page {page} is out of range 1..{pages}")
    start = (page - 1) * per_page
    return Page(items=list(items[start : start + per_page]), number=page, total_pages=pages)
'''

_PAGINATE_FIXED = _PAGINATE_BASE.replace(
    "    return total // per_page + 1\n",
    "    if total == 0:\n        return 1\n    return (total + per_page - 1) // per_page\n",
)

_TESTS_BASE = """import pytest

from pagekit import PageOutOfRange, page_count, paginate


def test_partial_last_page():
    assert page_count(25, 10) == 3
    page = paginate(list(range(25)), 3, per_page=10)
    assert page.items == [20, 21, 22, 23, 24]
    assert not page.has_next


def test_first_page():
    page = paginate(list(range(25)), 1, per_page=10)
    assert page.items == list(range(10))
    assert page.has_next and not page.has_previous


def test_empty_listing_has_one_page():
    assert page_count(0, 10) == 1
    assert paginate([], 1).items == []


def test_invalid_arguments():
    with pytest.raises(ValueError):
        page_count(10, 0)
    with pytest.raises(PageOutOfRange):
        paginate([1, 2, 3], 0)
"""

_TESTS_NEW = (
    _TESTS_BASE
    + """

def test_exact_multiple_page_count():
    assert page_count(20, 10) == 2
    assert page_count(10, 10) == 1


def test_last_page_of_exact_multiple_has_no_next():
    page = paginate(list(range(20)), 2, per_page=10)
    assert page.items == list(range(10, 20))
    assert not page.has_next


def test_page_past_the_end_is_rejected():
    with pytest.raises(PageOutOfRange):
        paginate(list(range(20)), 3, per_page=10)
"""
)

EXAMPLE = ExampleSpec(
    name="pagekit",
    number=12,
    version="0.3",
    problem_statement="""\
Extra empty page when the number of items is a multiple of the page size

Listing 20 records with `per_page=10` reports `total_pages == 3`, and the UI renders a "Next"
button on page 2 that leads to an empty page 3. Asking for `paginate(items, 3, per_page=10)`
returns an empty page instead of raising `PageOutOfRange`.

With 25 records everything looks right (3 pages, the last one has 5 items).

Expected: 20 items at 10 per page are exactly 2 pages, page 2 has no next page, and page 3 is
out of range.
""",
    base_files={
        "pyproject.toml": '[project]\nname = "pagekit"\nversion = "0.3.0"\n',
        "README.md": "# pagekit\n\nPagination helpers for list endpoints.\n",
        "pagekit/__init__.py": _INIT,
        "pagekit/paginate.py": _PAGINATE_BASE,
        "tests/test_paginate.py": _TESTS_BASE,
    },
    fix_files={"pagekit/paginate.py": _PAGINATE_FIXED},
    test_files={"tests/test_paginate.py": _TESTS_NEW},
    fail_to_pass=[
        "tests/test_paginate.py::test_exact_multiple_page_count",
        "tests/test_paginate.py::test_last_page_of_exact_multiple_has_no_next",
        "tests/test_paginate.py::test_page_past_the_end_is_rejected",
    ],
    pass_to_pass=[
        "tests/test_paginate.py::test_partial_last_page",
        "tests/test_paginate.py::test_first_page",
        "tests/test_paginate.py::test_empty_listing_has_one_page",
        "tests/test_paginate.py::test_invalid_arguments",
    ],
)
