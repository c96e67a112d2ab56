"""Example: the Gregorian leap-year rule without its 400-year exception."""

from agentkit.evals.examples.spec import ExampleSpec

_CALENDAR_BASE = '''"""Calendar arithmetic that does not depend on the platform's C library."""

from __future__ import annotations

import datetime as _dt

_DAYS = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def is_leap_year(year: int) -> bool:
    """Whether ``year`` has a 29 February in the proleptic Gregorian calendar."""
    return year % 4 == 0 and year % 100 != 0


def days_in_month(year: int, month: int) -> int:
    if not 1 <= month <= 12:
        raise ValueError(f"month must be in 1..12, got {month}")
    if month == 2 and is_leap_year(year):
        return 29
    return _DAYS[month - 1]


def add_months(day: _dt.date, months: int) -> _dt.date:
    """Move ``day`` by whole months, clamping to the last day of a shorter month."""
    index = day.year * 12 + (day.month - 1) + months
    year, month = divmod(index, 12)
    month += 1
    return _dt.date(year, month, min(day.day, days_in_month(year, month)))
'''

_CALENDAR_FIXED = _CALENDAR_BASE.replace(
    "    return year % 4 == 0 and year % 100 != 0\n",
    "    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)\n",
)

_TESTS_BASE = """import datetime as dt

import pytest

from datekit.calendar import add_months, days_in_month, is_leap_year


@pytest.mark.parametrize("year", [1996, 2004, 2024])
def test_regular_leap_years(year):
    assert is_leap_year(year)


@pytest.mark.parametrize("year", [1900, 2100, 2023])
def test_common_years(year):
    assert not is_leap_year(year)


def test_add_months_clamps_day():
    assert add_months(dt.date(2023, 1, 31), 1) == dt.date(2023, 2, 28)
    assert add_months(dt.date(2024, 3, 31), -1) == dt.date(2024, 2, 29)


def test_bad_month():
    with pytest.raises(ValueError):
        days_in_month(2024, 13)
"""

_TESTS_NEW = (
    _TESTS_BASE.replace(
        '@pytest.mark.parametrize("year", [1996, 2004, 2024])',
        '@pytest.mark.parametrize("year", [1996, 2004, 2024, 1600, 2000])',
    )
    + """

def test_february_2000_has_29_days():
    assert days_in_month(2000, 2) == 29


def test_add_months_into_february_2000():
    assert add_months(dt.date(2000, 1, 31), 1) == dt.date(2000, 2, 29)
"""
)

EXAMPLE = ExampleSpec(
    name="datekit",
    number=7,
    version="1.1",
    problem_statement="""\
add_months gives 28 February 2000

```python
>>> from datekit.calendar import add_months
>>> add_months(datetime.date(2000, 1, 31), 1)
datetime.date(2000, 2, 28)
```

The standard library agrees that 29 February 2000 exists (`datetime.date(2000, 2, 29)` works),
so month arithmetic around that date is off by a day. `days_in_month(2000, 2)` also says 28.
Other years (2023, 2024) behave as expected.
""",
    base_files={
        "setup.cfg": "[metadata]\nname = datekit\nversion = 1.1.0\n",
        "datekit/__init__.py": '"""Date helpers."""\n',
        "datekit/calendar.py": _CALENDAR_BASE,
        "tests/__init__.py": "",
        "tests/test_calendar.py": _TESTS_BASE,
    },
    fix_files={"datekit/calendar.py": _CALENDAR_FIXED},
    test_files={"tests/test_calendar.py": _TESTS_NEW},
    fail_to_pass=[
        "tests/test_calendar.py::test_regular_leap_years[1600]",
        "tests/test_calendar.py::test_regular_leap_years[2000]",
        "tests/test_calendar.py::test_february_2000_has_29_days",
        "tests/test_calendar.py::test_add_months_into_february_2000",
    ],
    pass_to_pass=[
        "tests/test_calendar.py::test_regular_leap_years[1996]",
        "tests/test_calendar.py::test_regular_leap_years[2004]",
        "tests/test_calendar.py::test_regular_leap_years[2024]",
        "tests/test_calendar.py::test_common_years[1900]",
        "tests/test_calendar.py::test_common_years[2100]",
        "tests/test_calendar.py::test_common_years[2023]",
        "tests/test_calendar.py::test_add_months_clamps_day",
        "tests/test_calendar.py::test_bad_month",
    ],
)
