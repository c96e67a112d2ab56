"""Regenerate the golden logs of ``tests/golden/log_parsers/`` from real test runners.

Why: the SWE-bench-compatible log parsers must give, for the same log, exactly the statuses
SWE-bench's own parsers give. Hand-written logs only show what we believe a runner prints; these
are printed by the runners themselves (pytest 7 and 8 in several modes, ``python -m unittest``,
Django's runner at verbosity 2, SymPy's runner in verbose mode), each on a tiny project built
in a temporary directory, in throw-away virtual environments installed from the package index.

Each ``NAME.log`` gets a ``NAME.json`` holding the command that produced it, the tool versions,
the statuses agentkit's parsers must report (``expected``: what SWE-bench's parsers report,
read by running the installed peer, minus the entries whose "status" is not a status word, the
one documented difference) and those left-out entries as SWE-bench gave them
(``swebench_only``). ``swebench_registry.json`` records which SWE-bench parser names share one
reader and which reader each repository uses. The test suite reads only these files; it never
needs SWE-bench. At the end the script reads every log with agentkit's parsers and lists any
disagreement (exit status 1), so a regeneration shows at once whether the parsers still match.

Usage (SWE-bench installed in its own venv, e.g. ``python3 -m venv /tmp/swebench-venv &&
/tmp/swebench-venv/bin/pip install 'swebench==5.*'``)::

    .venv/bin/python scripts/make_parser_logs.py --swebench-python /tmp/swebench-venv/bin/python
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
import textwrap
import venv
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO_ROOT / "tests" / "golden" / "log_parsers"

# Pinned so a regeneration changes a log only when this script changes.
PYTEST_7 = "7.4.4"
PYTEST_8 = "8.3.5"
DJANGO = "4.2.30"
SYMPY = "1.12"

# Temporary paths are replaced by SWE-bench's working directory so logs do not change per run.
TESTBED = "/testbed"
VALID_STATUSES = frozenset({"PASSED", "FAILED", "SKIPPED", "ERROR", "XFAIL"})
MAX_LOG_BYTES = 12_000

# The readers SWE-bench has for Python repositories; every other Python name is one of these.
CANONICAL_PARSERS = (
    "parse_log_pytest",
    "parse_log_pytest_options",
    "parse_log_pytest_v2",
    "parse_log_django",
    "parse_log_sympy",
    "parse_log_matplotlib",
    "parse_log_seaborn",
)

PYTEST_SAMPLE = """
import enum

import pytest


class MouseButton(enum.Enum):
    LEFT = 1
    RIGHT = 3


def test_pass():
    pass


def test_fail():
    assert 1 == 2, "boom - [x]"


@pytest.mark.parametrize("value", ["a b", "c - d", "e[f]", "plain"])
def test_ids(value):
    assert value != "a b"


@pytest.mark.parametrize("button", [MouseButton.LEFT, MouseButton.RIGHT])
def test_button(button):
    assert button is not MouseButton.RIGHT


@pytest.mark.parametrize("path", ["/testbed/data/one.dcm", "//server/share", "/testbed/*.txt"])
def test_path(path):
    pass


@pytest.mark.skip(reason="not here")
def test_skip():
    pass


@pytest.mark.xfail(reason="known bug")
def test_xfail():
    assert 0


@pytest.mark.xfail(reason="fixed since")
def test_xpass():
    pass


@pytest.mark.xfail(strict=True)
def test_xpass_strict():
    pass


@pytest.fixture
def broken():
    raise RuntimeError("setup - failed")


def test_setup_error(broken):
    pass


@pytest.fixture
def bad_teardown():
    yield
    raise RuntimeError("teardown")


def test_teardown_error(bad_teardown):
    pass


def test_prints():
    print("PASSED tests/test_sample.py::test_fail")


class TestGroup:
    def test_method(self):
        pass
"""

PYTEST_BROKEN = "def test_x(:\n    pass\n"

UNITTEST_SAMPLE = '''
import unittest


class Sample(unittest.TestCase):
    def test_pass(self):
        pass

    def test_fail(self):
        self.assertEqual(1, 2)

    def test_error(self):
        raise RuntimeError("boom")

    @unittest.skip("not today")
    def test_skip(self):
        pass

    @unittest.expectedFailure
    def test_expected_failure(self):
        self.assertEqual(1, 2)

    @unittest.expectedFailure
    def test_unexpected_success(self):
        pass

    def test_docstring(self):
        """A docstring's first line is shown."""

    def test_subtests(self):
        for index in range(2):
            with self.subTest(index=index):
                self.assertEqual(index, 0)
'''

DJANGO_SETTINGS = """
SECRET_KEY = "not-secret"
INSTALLED_APPS = ["demo"]
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
"""

DJANGO_TESTS = '''
import sys
import unittest

from django.test import SimpleTestCase, TestCase


class Basics(SimpleTestCase):
    def test_pass(self):
        pass

    def test_fail(self):
        self.assertEqual(1, 2)

    def test_error(self):
        raise RuntimeError("boom")

    @unittest.skip("not today")
    def test_skip(self):
        pass

    @unittest.expectedFailure
    def test_expected_failure(self):
        self.assertEqual(1, 2)

    @unittest.expectedFailure
    def test_unexpected_success(self):
        pass

    def test_docstring(self):
        """
        A docstring's first line becomes the name.

        More text that is not shown.
        """

    def test_failing_docstring(self):
        """A failing test with a docstring."""
        self.assertTrue(False)

    def test_output(self):
        print("some output")

    def test_server_error_message(self):
        sys.stderr.write("Internal Server Error: /demo/\\n")

    def test_subtests(self):
        for index in range(2):
            with self.subTest(index=index):
                self.assertEqual(index, 0)


class WithDatabase(TestCase):
    def test_db(self):
        pass


class BrokenSetup(SimpleTestCase):
    @classmethod
    def setUpClass(cls):
        raise RuntimeError("class setup")

    def test_never_runs(self):
        pass
'''

SYMPY_TESTS = """
from sympy.testing.pytest import SKIP, XFAIL, raises, skip


def test_pass():
    assert 1 + 1 == 2


def test_fail():
    assert 1 == 2


def test_error():
    raise ValueError("boom")


@XFAIL
def test_xfail():
    assert 0


@XFAIL
def test_xpass():
    pass


def test_skip():
    skip("not today")


@SKIP("never")
def test_skip_decorator():
    pass


def test_raises():
    raises(ZeroDivisionError, lambda: 1 / 0)


def test_prints():
    print("test_fake ok")
"""


@dataclass(frozen=True)
class Scenario:
    """One log: which environment, which command, in which prepared project."""

    name: str
    env: str
    command: list[str]
    project: str
    tools: dict[str, str] = field(default_factory=dict)


def _write_files(root: Path, files: dict[str, str]) -> None:
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"))


def _make_venv(path: Path, requirements: list[str]) -> Path:
    """A fresh venv with ``requirements`` installed; returns its python."""
    venv.EnvBuilder(with_pip=True, clear=True).create(path)
    python = path / "bin" / "python"
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", *requirements],
        check=True,
    )
    return python


def _site_packages(python: Path) -> Path:
    code = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    return Path(
        subprocess.run(
            [str(python), "-c", code], check=True, capture_output=True, text=True
        ).stdout.strip()
    )


def _prepare_projects(work: Path, sympy_site: Path) -> dict[str, Path]:
    """The tiny projects the runners are pointed at, keyed by name."""
    projects = {name: work / name for name in ("pytest", "collection", "unittest", "django")}
    _write_files(projects["pytest"], {"tests/test_sample.py": PYTEST_SAMPLE})
    _write_files(
        projects["collection"],
        {"tests/test_sample.py": PYTEST_SAMPLE, "tests/test_broken.py": PYTEST_BROKEN},
    )
    _write_files(projects["unittest"], {"sample_unittest.py": UNITTEST_SAMPLE})
    _write_files(
        projects["django"],
        {
            "demo_settings.py": DJANGO_SETTINGS,
            "demo/__init__.py": "",
            "demo/tests.py": DJANGO_TESTS,
        },
    )
    # SymPy's runner only collects files inside the sympy tree, as ``bin/test`` does.
    _write_files(
        sympy_site / "sympy" / "agentkit_demo",
        {"__init__.py": "", "tests/__init__.py": "", "tests/test_demo.py": SYMPY_TESTS},
    )
    projects["sympy"] = work
    return projects


def _scenarios() -> list[Scenario]:
    """The logs to produce: the command lines SWE-bench's specs use, and the edge modes."""
    pytest7 = {"pytest": PYTEST_7}
    pytest8 = {"pytest": PYTEST_8}
    sympy_run = (
        "import sys, sympy; "
        'sys.exit(sympy.test("sympy/agentkit_demo", verbose=True, seed=1, subprocess=False))'
    )
    rows: list[tuple[str, str, str, str, dict[str, str]]] = [
        ("pytest7_rA", "pytest7", "-m pytest -rA", "pytest", pytest7),
        (
            "pytest7_classic_verbose",
            "pytest7",
            "-m pytest -rA -vv -o console_output_style=classic --tb=no",
            "pytest",
            pytest7,
        ),
        ("pytest8_rA", "main", "-m pytest -rA", "pytest", pytest8),
        (
            "pytest8_rA_tb_no",
            "main",
            "-m pytest -rA --tb=no -p no:cacheprovider",
            "pytest",
            pytest8,
        ),
        ("pytest8_color", "main", "-m pytest -rA --tb=no --color=yes", "pytest", pytest8),
        ("pytest8_verbose", "main", "-m pytest -rA -v --tb=no", "pytest", pytest8),
        (
            "pytest8_classic_verbose_color",
            "main",
            "-m pytest -rA -vv -o console_output_style=classic --tb=no --color=yes",
            "pytest",
            pytest8,
        ),
        (
            "pytest8_collection_error",
            "main",
            "-m pytest -rA -p no:cacheprovider tests",
            "collection",
            pytest8,
        ),
        ("unittest_verbose", "main", "-m unittest -v sample_unittest", "unittest", {}),
        (
            "django_verbosity2",
            "main",
            "-m django test demo --settings=demo_settings --verbosity 2 --parallel 1",
            "django",
            {"django": DJANGO},
        ),
    ]
    scenarios = [
        Scenario(
            name,
            env,
            # The pytest project's runs all target the sample module; ``tests`` names its own.
            shlex.split(args) + (["tests/test_sample.py"] if project == "pytest" else []),
            project,
            tools,
        )
        for name, env, args, project, tools in rows
    ]
    scenarios.append(
        Scenario("sympy_verbose", "main", ["-c", sympy_run], "sympy", {"sympy": SYMPY})
    )
    return scenarios


def _run(python: Path, scenario: Scenario, cwd: Path, work: Path) -> str:
    """Run one scenario; stdout and stderr interleaved as a terminal would show them."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(work),
        "LANG": "C.UTF-8",
        "PYTHONUNBUFFERED": "1",
        "PYTHONPATH": str(cwd),
        "PYTHONHASHSEED": "0",
        "SYMPY_USE_CACHE": "no",  # what SWE-bench's ``bin/test -C`` sets
        "COLUMNS": "100",
    }
    completed = subprocess.run(
        [str(python), *scenario.command],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        check=False,
    )
    log = completed.stdout
    for prefix in sorted({str(work), str(work.resolve())}, key=len, reverse=True):
        log = log.replace(prefix, TESTBED)
    # The venvs' names and the interpreter's install prefix differ between machines.
    log = re.sub(r"venv-\w+/", "venv/", log)
    return log.replace(sys.base_prefix, "/usr/local")


SWEBENCH_READER = """
import json, sys
from swebench.harness.log_parsers import PARSER_REGISTRY
from swebench.harness.log_parsers import python as py
import swebench
names = json.loads(sys.argv[1])
logs = json.load(sys.stdin)
out = {"version": swebench.__version__, "logs": {}, "registry": {}, "repos": {}}
for log_name, text in logs.items():
    out["logs"][log_name] = {n: PARSER_REGISTRY[n](text, None) for n in names}
for name, function in PARSER_REGISTRY.items():
    if function.__module__ == py.__name__:
        out["registry"][name] = function.__name__
out["repos"] = {repo: function.__name__ for repo, function in py.MAP_REPO_TO_PARSER_PY.items()}
print(json.dumps(out))
"""


def _read_with_swebench(swebench_python: Path, logs: dict[str, str]) -> dict[str, object]:
    completed = subprocess.run(
        [str(swebench_python), "-c", SWEBENCH_READER, json.dumps(CANONICAL_PARSERS)],
        input=json.dumps(logs),
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, object] = json.loads(completed.stdout)
    return result


def _sorted(statuses: dict[str, str]) -> dict[str, str]:
    return dict(sorted(statuses.items()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument(
        "--swebench-python", type=Path, default=Path("/tmp/swebench-venv/bin/python")
    )
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)

    with tempfile.TemporaryDirectory(prefix="parser-logs-") as tmp:
        work = Path(tmp)
        pythons = {
            "pytest7": _make_venv(work / "venv-pytest7", [f"pytest=={PYTEST_7}"]),
            "main": _make_venv(
                work / "venv-main", [f"pytest=={PYTEST_8}", f"django=={DJANGO}", f"sympy=={SYMPY}"]
            ),
        }
        projects = _prepare_projects(work, _site_packages(pythons["main"]))
        logs: dict[str, str] = {}
        scenarios = _scenarios()
        for scenario in scenarios:
            logs[scenario.name] = _run(
                pythons[scenario.env], scenario, projects[scenario.project], work
            )
            size = len(logs[scenario.name].encode())
            print(f"{scenario.name}: {size} bytes", file=sys.stderr)
            if size > MAX_LOG_BYTES:
                raise SystemExit(f"{scenario.name}: log of {size} bytes; keep goldens small")

    peer = _read_with_swebench(args.swebench_python, logs)
    peer_logs = peer["logs"]
    assert isinstance(peer_logs, dict)
    python_version = ".".join(map(str, sys.version_info[:3]))
    for scenario in scenarios:
        reported: dict[str, dict[str, str]] = peer_logs[scenario.name]
        expected = {
            name: _sorted(
                {test: status for test, status in statuses.items() if status in VALID_STATUSES}
            )
            for name, statuses in reported.items()
        }
        (args.out / f"{scenario.name}.log").write_text(logs[scenario.name])
        record = {
            "log": f"{scenario.name}.log",
            "command": shlex.join(["python", *scenario.command]),
            "tools": {"python": python_version, **scenario.tools},
            "swebench_version": peer["version"],
            "expected": expected,
            # The cross-check: what SWE-bench reported beyond ``expected`` (empty when the two agree).
            "swebench_only": {
                name: extra
                for name, statuses in reported.items()
                if (
                    extra := _sorted({t: s for t, s in statuses.items() if t not in expected[name]})
                )
            },
        }
        (args.out / f"{scenario.name}.json").write_text(json.dumps(record, indent=1) + "\n")
    registry = {
        "swebench_version": peer["version"],
        "parsers": dict(sorted(peer["registry"].items())),  # type: ignore[attr-defined]
        "repos": dict(sorted(peer["repos"].items())),  # type: ignore[attr-defined]
    }
    (args.out / "swebench_registry.json").write_text(json.dumps(registry, indent=1) + "\n")
    print(f"wrote {len(scenarios)} logs to {args.out}", file=sys.stderr)
    return _compare_with_agentkit(args.out)


def _compare_with_agentkit(out: Path) -> int:
    """Read every stored log with agentkit's parsers; 1 if any differs from ``expected``."""
    from agentkit.evals.log_parsers import get_log_parser

    mismatches = 0
    for record_path in sorted(out.glob("*.json")):
        record = json.loads(record_path.read_text())
        if "expected" not in record:
            continue
        log = (out / record["log"]).read_text()
        for name, expected in record["expected"].items():
            got = {test: str(status) for test, status in get_log_parser(name)(log).items()}
            if got != expected:
                mismatches += 1
                print(f"MISMATCH {record['log']} {name}: {got} != {expected}", file=sys.stderr)
    print(f"agentkit vs expected: {mismatches} mismatches", file=sys.stderr)
    return 1 if mismatches else 0


if __name__ == "__main__":
    raise SystemExit(main())
