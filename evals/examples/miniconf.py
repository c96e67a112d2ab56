"""Example: escape sequences decoded one after another in a small INI parser."""

from agentkit.evals.examples.spec import ExampleSpec

_INIT = '''"""A tiny INI dialect: sections, key = value, quoted values with escapes, comments."""

from miniconf.errors import ParseError
from miniconf.parser import load, loads

__all__ = ["ParseError", "load", "loads"]
'''

_ERRORS = '''class ParseError(ValueError):
    """The text is not valid miniconf; the message names the line."""

    def __init__(self, line_number: int, message: str) -> None:
        super().__init__(f"line {line_number}: {message}")
        self.line_number = line_number
'''

_PARSER_BASE = r'''"""Parsing. Values are strings; callers convert them."""

from __future__ import annotations

from pathlib import Path

from miniconf.errors import ParseError

Config = dict[str, dict[str, str]]


def _unescape(text: str) -> str:
    """Decode the escapes allowed inside double quotes: \\ \" \n \t."""
    text = text.replace("\\\\", "\\")
    text = text.replace('\\"', '"')
    text = text.replace("\\n", "\n")
    return text.replace("\\t", "\t")


def _quoted_value(raw: str, line_number: int) -> str:
    index = 1
    while index < len(raw):
        if raw[index] == "\\":
            index += 2
            continue
        if raw[index] == '"':
            break
        index += 1
    else:
        raise ParseError(line_number, "unterminated quoted value")
    rest = raw[index + 1 :].strip()
    if rest and rest[0] not in "#;":
        raise ParseError(line_number, f"unexpected text after quoted value: {rest!r}")
    return _unescape(raw[1:index])


def _plain_value(raw: str) -> str:
    for marker in (" #", " ;"):
        position = raw.find(marker)
        if position >= 0:
            raw = raw[:position]
    return raw.strip()


def loads(text: str) -> Config:
    config: Config = {}
    section: dict[str, str] | None = None
    for line_number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped[0] in "#;":
            continue
        if stripped.startswith("["):
            if not stripped.endswith("]"):
                raise ParseError(line_number, "section header must end with ']'")
            section = config.setdefault(stripped[1:-1].strip(), {})
            continue
        key, sep, raw = stripped.partition("=")
        if not sep:
            raise ParseError(line_number, "expected 'key = value'")
        if section is None:
            raise ParseError(line_number, "key outside of any section")
        raw = raw.strip()
        section[key.strip()] = (
            _quoted_value(raw, line_number) if raw.startswith('"') else _plain_value(raw)
        )
    return config


def load(path: str | Path) -> Config:
    return loads(Path(path).read_text(encoding="utf-8"))
'''

_PARSER_FIXED = _PARSER_BASE.replace(
    r'''def _unescape(text: str) -> str:
    """Decode the escapes allowed inside double quotes: \\ \" \n \t."""
    text = text.replace("\\\\", "\\")
    text = text.replace('\\"', '"')
    text = text.replace("\\n", "\n")
    return text.replace("\\t", "\t")
''',
    r'''_ESCAPES = {"\\": "\\", '"': '"', "n": "\n", "t": "\t"}


def _unescape(text: str) -> str:
    """Decode the escapes allowed inside double quotes: \\ \" \n \t.

    One left-to-right pass: each backslash consumes exactly the character after it, so an
    escaped backslash can never combine with the next character. Unknown escapes stay as written.
    """
    out: list[str] = []
    index = 0
    while index < len(text):
        char = text[index]
        if char == "\\" and index + 1 < len(text):
            following = text[index + 1]
            out.append(_ESCAPES.get(following, char + following))
            index += 2
            continue
        out.append(char)
        index += 1
    return "".join(out)
''',
)

_TESTS_BASE = r'''import pytest

from miniconf import ParseError, loads


def test_sections_and_comments():
    text = """
# deployment settings
[server]
host = example.org ; the public name
port = 8080

[client]
retries = 3
"""
    assert loads(text) == {
        "server": {"host": "example.org", "port": "8080"},
        "client": {"retries": "3"},
    }


def test_quoted_value_keeps_comment_characters():
    assert loads('[a]\nk = "x; y # z"\n') == {"a": {"k": "x; y # z"}}


def test_quote_and_newline_escapes():
    assert loads('[a]\nk = "say \\"hi\\"\\nbye"\n')["a"]["k"] == 'say "hi"\nbye'


def test_errors_name_the_line():
    with pytest.raises(ParseError, match="line 2"):
        loads('[a]\nk = "oops\n')
    with pytest.raises(ParseError, match="line 1"):
        loads("k = v\n")
'''

_TESTS_NEW = (
    _TESTS_BASE
    + r"""

def test_windows_path_keeps_backslashes():
    text = '[paths]\ndata = "C:\\\\new\\\\table"\n'
    assert loads(text)["paths"]["data"] == "C:\\new\\table"


def test_escaped_backslash_before_letter():
    assert loads('[a]\nk = "x\\\\n"\n')["a"]["k"] == "x\\n"
"""
)

EXAMPLE = ExampleSpec(
    name="miniconf",
    number=31,
    version="2.0",
    problem_statement="""\
Quoted Windows paths come back with newlines and tabs in them

Given this config file:

```ini
[paths]
data = "C:\\\\new\\\\table"
```

`miniconf.load(...)["paths"]["data"]` should be the string `C:\\new\\table` (two backslashes
escaped as documented), but it contains a newline after `C:` and a tab before `able`.

Plain escapes like `\\n` inside quotes and `\\"` work as documented.
""",
    base_files={
        "pyproject.toml": '[project]\nname = "miniconf"\nversion = "2.0.0"\n',
        "miniconf/__init__.py": _INIT,
        "miniconf/errors.py": _ERRORS,
        "miniconf/parser.py": _PARSER_BASE,
        "tests/test_parser.py": _TESTS_BASE,
    },
    fix_files={"miniconf/parser.py": _PARSER_FIXED},
    test_files={"tests/test_parser.py": _TESTS_NEW},
    fail_to_pass=[
        "tests/test_parser.py::test_windows_path_keeps_backslashes",
        "tests/test_parser.py::test_escaped_backslash_before_letter",
    ],
    pass_to_pass=[
        "tests/test_parser.py::test_sections_and_comments",
        "tests/test_parser.py::test_quoted_value_keeps_comment_characters",
        "tests/test_parser.py::test_quote_and_newline_escapes",
        "tests/test_parser.py::test_errors_name_the_line",
    ],
)
