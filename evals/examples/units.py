"""Example: displayed quantities are truncated instead of rounded."""

from agentkit.evals.examples.spec import ExampleSpec

_TABLE = '''"""Conversion factors to each dimension's base unit (metre, kilogram, second)."""

LENGTH = {"mm": 0.001, "cm": 0.01, "m": 1.0, "km": 1000.0, "in": 0.0254, "ft": 0.3048,
          "mi": 1609.344}
MASS = {"g": 0.001, "kg": 1.0, "lb": 0.45359237, "oz": 0.028349523125}
TIME = {"s": 1.0, "min": 60.0, "h": 3600.0}

DIMENSIONS = {"length": LENGTH, "mass": MASS, "time": TIME}
'''

_CONVERT_BASE = '''"""Convert between units of one dimension and format quantities for display."""

from __future__ import annotations

from units.table import DIMENSIONS


class UnitError(ValueError):
    """Unknown unit, or units of different dimensions."""


def _dimension_of(unit: str) -> str:
    for name, factors in DIMENSIONS.items():
        if unit in factors:
            return name
    raise UnitError(f"unknown unit {unit!r}")


def convert(value: float, from_unit: str, to_unit: str) -> float:
    source, target = _dimension_of(from_unit), _dimension_of(to_unit)
    if source != target:
        raise UnitError(f"cannot convert {source} ({from_unit}) to {target} ({to_unit})")
    factors = DIMENSIONS[source]
    return value * factors[from_unit] / factors[to_unit]


def _round(value: float, digits: int) -> float:
    scale = 10**digits
    return int(value * scale) / scale


def format_quantity(value: float, unit: str, digits: int = 1) -> str:
    """``value`` shown with ``digits`` decimals, e.g. ``"3.3 ft"``."""
    _dimension_of(unit)
    return f"{_round(value, digits):.{digits}f} {unit}"


def display(value: float, from_unit: str, to_unit: str, digits: int = 1) -> str:
    return format_quantity(convert(value, from_unit, to_unit), to_unit, digits)
'''

_CONVERT_FIXED = _CONVERT_BASE.replace(
    "from units.table import DIMENSIONS\n",
    "from decimal import ROUND_HALF_UP, Decimal\n\nfrom units.table import DIMENSIONS\n",
).replace(
    """def _round(value: float, digits: int) -> float:
    scale = 10**digits
    return int(value * scale) / scale
""",
    '''def _round(value: float, digits: int) -> Decimal:
    """Round half away from zero on the shortest decimal form of ``value`` (what users read),
    not on its binary approximation."""
    return Decimal(repr(value)).quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP)
''',
)

_TESTS_BASE = """import pytest

from units.convert import UnitError, convert, display, format_quantity


def test_convert_between_units():
    assert convert(1, "km", "m") == 1000
    assert convert(2, "h", "min") == 120


def test_exact_values_are_shown_unchanged():
    assert display(2500, "m", "km") == "2.5 km"
    assert format_quantity(12, "kg", digits=2) == "12.00 kg"


def test_unknown_unit():
    with pytest.raises(UnitError, match="furlong"):
        convert(1, "furlong", "m")


def test_dimensions_must_match():
    with pytest.raises(UnitError):
        convert(1, "kg", "m")
"""

_TESTS_NEW = (
    _TESTS_BASE
    + """

def test_metre_in_feet_rounds_to_nearest():
    assert display(1, "m", "ft") == "3.3 ft"


def test_half_rounds_away_from_zero():
    assert format_quantity(0.25, "m") == "0.3 m"
    assert format_quantity(-1.26, "m") == "-1.3 m"


def test_half_inch_in_centimetres():
    assert display(0.5, "in", "cm") == "1.3 cm"
"""
)

EXAMPLE = ExampleSpec(
    name="units",
    number=19,
    version="0.5",
    problem_statement="""\
Displayed conversions are one step too low

`display(1, "m", "ft")` returns `"3.2 ft"`; 1 m is 3.28 ft, which should read `3.3 ft` at one
decimal. Similarly `format_quantity(0.25, "m")` gives `"0.2 m"` and `format_quantity(-1.26, "m")`
gives `"-1.2 m"`. Values that are exact at the requested precision print fine.

Expected: the usual schoolbook rounding (halves away from zero) at the requested number of digits.
""",
    base_files={
        "pyproject.toml": '[project]\nname = "units"\nversion = "0.5.0"\n',
        "units/__init__.py": "",
        "units/table.py": _TABLE,
        "units/convert.py": _CONVERT_BASE,
        "tests/test_convert.py": _TESTS_BASE,
    },
    fix_files={"units/convert.py": _CONVERT_FIXED},
    test_files={"tests/test_convert.py": _TESTS_NEW},
    fail_to_pass=[
        "tests/test_convert.py::test_metre_in_feet_rounds_to_nearest",
        "tests/test_convert.py::test_half_rounds_away_from_zero",
        "tests/test_convert.py::test_half_inch_in_centimetres",
    ],
    pass_to_pass=[
        "tests/test_convert.py::test_convert_between_units",
        "tests/test_convert.py::test_exact_values_are_shown_unchanged",
        "tests/test_convert.py::test_unknown_unit",
        "tests/test_convert.py::test_dimensions_must_match",
    ],
)
