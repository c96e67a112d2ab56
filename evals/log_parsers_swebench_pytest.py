"""pytest log parsers that read a log exactly as SWE-bench's harness (5.x) reads it.

Why not reuse :func:`agentkit.evals.log_parsers.parse_log_pytest`: a SWE-bench instance's
``FAIL_TO_PASS``/``PASS_TO_PASS`` lists were produced by SWE-bench's own parsers, quirks included.
Its ``parse_log_pytest`` keeps only the first word after the status, so the id of
``test_p[a b]`` is stored in the dataset as ``test_p[a``; a parser that read the full id would
never find that name and would grade the test as missing. Reproducing SWE-bench's reading,
name for name, is what makes our grades equal to its grades. Everything here is written from the
shapes of pytest's output and the behaviour SWE-bench documents; the golden logs under
``tests/golden/log_parsers/`` pin each function to the statuses SWE-bench itself reports.

Shared rules (SWE-bench's), which hold for every parser in this module unless its docstring
says otherwise:

* the log is cut at ``"\\n"`` only (a ``"\\r"`` is whitespace at the end of a word);
* a result line starts with a status word (``PASSED``, ``FAILED``, ``SKIPPED``, ``ERROR``,
  ``XFAIL``), so ANSI-coloured summaries and ``XPASS`` lines are not results;
* ``SKIPPED [2] path:12: reason`` names a location, not a test, and is ignored;
* a later line about the same name replaces an earlier one.

One deliberate difference: SWE-bench stores whatever word starts the line as the status, so
``ERROR: file or directory not found: x`` becomes ``{"file": "ERROR:"}``; its grader then
counts that status as neither passed nor failed. Such words are not statuses and these lines are
never test results, so they are dropped here (``status_from_word`` returns ``None``); no
real test name can be affected.
"""

from __future__ import annotations

import re

from agentkit.evals.log_status import STATUS_WORDS, TestStatus, status_from_word

__all__ = [
    "parse_swebench_matplotlib",
    "parse_swebench_pytest",
    "parse_swebench_pytest_options",
    "parse_swebench_pytest_v2",
    "parse_swebench_seaborn",
]

_SKIP_COUNT = re.compile(r"\[\d+\]")


def _is_skip_location(word: str, name: str) -> bool:
    """``SKIPPED [N] …``: the ``[N]`` is how many tests were skipped there, not a test id."""
    return word == TestStatus.SKIPPED and _SKIP_COUNT.fullmatch(name) is not None


def _leading_result(line: str) -> tuple[str, str] | None:
    """``(status word, test name)`` of a line that starts with a status word, else ``None``.

    The name is the second word. On ``FAILED`` lines every `` - `` becomes a space first, so
    the failure message after the id is split off (and an id containing `` - `` is cut there).
    """
    if not line.startswith(STATUS_WORDS):
        return None
    if line.startswith(TestStatus.FAILED):
        line = line.replace(" - ", " ")
    words = line.split()
    if len(words) < 2 or _is_skip_location(words[0], words[1]):
        return None
    return words[0], words[1]


def _record(statuses: dict[str, TestStatus], name: str, word: str) -> None:
    status = status_from_word(word)
    if status is not None:
        statuses[name] = status


def parse_swebench_pytest(log: str) -> dict[str, TestStatus]:
    """SWE-bench's ``parse_log_pytest``: the ``-rA`` short summary, first word as the name.

    Used for pytest, flask, xarray, astroid, marshmallow, pvlib, pyvista and sqlfluff.
    Verbose ``path::test PASSED [ 50%]`` lines are not read.
    """
    statuses: dict[str, TestStatus] = {}
    for line in log.split("\n"):
        result = _leading_result(line)
        if result is not None:
            _record(statuses, result[1], result[0])
    return statuses


def parse_swebench_matplotlib(log: str) -> dict[str, TestStatus]:
    """SWE-bench's ``parse_log_matplotlib``: ``parse_log_pytest`` after renaming mouse buttons.

    Parametrized ids print the enum member (``MouseButton.LEFT``) or its value (``1``)
    depending on the Python version; the dataset uses the values, so every line gets
    ``MouseButton.LEFT`` → ``1`` and ``MouseButton.RIGHT`` → ``3`` before it is read.
    """
    statuses: dict[str, TestStatus] = {}
    for line in log.split("\n"):
        line = line.replace("MouseButton.LEFT", "1").replace("MouseButton.RIGHT", "3")
        result = _leading_result(line)
        if result is not None:
            _record(statuses, result[1], result[0])
    return statuses


def _shorten_path_option(name: str) -> str:
    """``test[/tmp/x/data/file.dcm]`` → ``test[/file.dcm]``; anything after the last ``]`` goes.

    Parametrized ids that embed an absolute path differ between machines, so SWE-bench keeps
    only the last path component. The bracket part runs from the first ``[`` to the last
    ``]``; ids without such a pair, options starting with ``//`` and glob patterns (``*``) are
    kept as they are.
    """
    opening = name.find("[")
    closing = name.rfind("]")
    if opening < 0 or closing < opening:
        return name
    head, option = name[:opening], name[opening + 1 : closing]
    if option.startswith("/") and not option.startswith("//") and "*" not in option:
        option = "/" + option.split("/")[-1]
    return f"{head}[{option}]"


def parse_swebench_pytest_options(log: str) -> dict[str, TestStatus]:
    """SWE-bench's ``parse_log_pytest_options`` (requests, pylint, pydicom).

    ``parse_log_pytest`` with absolute-path parameters shortened as :func:`_shorten_path_option`
    describes.
    """
    statuses: dict[str, TestStatus] = {}
    for line in log.split("\n"):
        result = _leading_result(line)
        if result is not None:
            _record(statuses, _shorten_path_option(result[1]), result[0])
    return statuses


# SWE-bench drops ``[<digits>m`` and then every control character (1–31: ESC, tab, CR...). Colour
# codes such as ``ESC[1;31m`` therefore leave ``[1;31m`` behind, and a tab inside a line glues
# its neighbours together; both are reproduced because the dataset names were made this way.
_COLOUR_CODE = re.compile(r"\[\d+m")
_CONTROL_CHARACTERS = {code: None for code in range(1, 32)}


def parse_swebench_pytest_v2(log: str) -> dict[str, TestStatus]:
    """SWE-bench's ``parse_log_pytest_v2`` (astropy, scikit-learn, sphinx).

    After removing colour codes and control characters: a line that starts with a status word
    names the test with all the words after it (spaces normalised), cut at the first `` - `` on
    ``FAILED`` lines only (so ``ERROR``/``XFAIL`` names keep their `` - message``); otherwise a
    line that ends with a status word (``-v`` without the progress column, e.g.
    ``-o console_output_style=classic``) names the test with all the words before it.
    """
    statuses: dict[str, TestStatus] = {}
    for raw_line in log.split("\n"):
        line = _COLOUR_CODE.sub("", raw_line).translate(_CONTROL_CHARACTERS)
        if line.startswith(STATUS_WORDS):
            if line.startswith(TestStatus.FAILED):
                line = line.split(" - ", 1)[0]
            words = line.split()
            if len(words) >= 2 and not _is_skip_location(words[0], words[1]):
                _record(statuses, " ".join(words[1:]), words[0])
        elif line.endswith(STATUS_WORDS):
            words = line.split()
            if len(words) >= 2:
                _record(statuses, " ".join(words[:-1]), words[-1])
    return statuses


def parse_swebench_seaborn(log: str) -> dict[str, TestStatus]:
    """SWE-bench's ``parse_log_seaborn``: only passes and failures, by first or second word.

    ``FAILED name ...`` → failed; a line with `` PASSED `` as its second word
    (``path::test PASSED [ 10%]``) → passed; else ``PASSED name`` → passed. Errors, skips and
    expected failures are not recorded (a missing test grades as a failure).
    """
    statuses: dict[str, TestStatus] = {}
    for line in log.split("\n"):
        words = line.split()
        if len(words) < 2:
            continue
        if line.startswith(TestStatus.FAILED):
            statuses[words[1]] = TestStatus.FAILED
        elif f" {TestStatus.PASSED} " in line:
            if words[1] == TestStatus.PASSED:
                statuses[words[0]] = TestStatus.PASSED
        elif line.startswith(TestStatus.PASSED):
            statuses[words[1]] = TestStatus.PASSED
    return statuses
