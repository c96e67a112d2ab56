"""``agentkit inspect`` over real run folders: the gold backend on the bundled examples, a
scripted run with a format error, hostile output and an error task, and a damaged copy; the HTML
report is checked in a real headless browser (Debian's chromium driven by playwright)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from agentkit.backends.gold import GoldBackend
from agentkit.backends.scripted import ScriptedBackend
from agentkit.cli.inspect_cmd import inspect_command
from agentkit.evals.examples import build_examples
from agentkit.evals.harness import run_and_grade
from agentkit.evals.html_report import render_html, write_html
from agentkit.evals.inspector import clip, printable, read_run
from agentkit.evals.run_folder import RunFolder
from agentkit.scaffolds import load_scaffold
from agentkit.tasks import Task, load_tasks
from agentkit.tools import get_format, get_tool
from agentkit.types import Completion, ToolCall, Trajectory

SCAFFOLD = load_scaffold("mini")
TOOLS = [get_tool("bash")]
FORMAT = get_format(SCAFFOLD.call_format)
CHROMIUM = os.environ.get("AGENTKIT_CHROMIUM", "/usr/bin/chromium")
"""Debian's chromium; playwright's own browser downloads are never used."""

INJECTED = '<script>window.__injected = 1; console.error("injected")</script>'
HOSTILE_OUTPUT = [INJECTED, '<img src=x onerror="window.__injected = 2">', "a & b", "```python"]
HOSTILE_THOUGHT = "Print hostile text: <b>bold</b> & a bell \x07 and \x1b[2Ja screen wipe."
NO_ACTION_REPLY = "I think the bug is in <module> & friends; no command this time."


@pytest.fixture(autouse=True)
def wide_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """rich wraps at COLUMNS; wide enough that ids and commands stay on one line."""
    monkeypatch.setenv("COLUMNS", "250")


@pytest.fixture(scope="module")
def tasks(tmp_path_factory: pytest.TempPathFactory) -> list[Task]:
    return load_tasks(build_examples(tmp_path_factory.mktemp("examples")))


@pytest.fixture(scope="module")
def gold_run(tasks: list[Task], tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = RunFolder(tmp_path_factory.mktemp("runs") / "gold", "gold")

    def gold(task: Task) -> GoldBackend:
        return GoldBackend(task.patch, FORMAT, TOOLS, SCAFFOLD.submit_sentinel)

    asyncio.run(run_and_grade(tasks, SCAFFOLD, TOOLS, gold, folder, runtime="local", workers=4))
    return folder.root


def _reply(command: str, thought: str) -> Completion:
    return FORMAT.render(ToolCall(name="bash", arguments={"command": command}), TOOLS, thought)


@pytest.fixture(scope="module")
def scripted_run(tasks: list[Task], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Task 0: a reply without an action, hostile output, a submission without changes
    (unresolved); a task without a repository (an error result)."""
    folder = RunFolder(tmp_path_factory.mktemp("runs") / "scripted", "scripted")
    printf = "printf '%s\\n' " + " ".join(f"'{line}'" for line in HOSTILE_OUTPUT)
    replies = [
        Completion(text=NO_ACTION_REPLY),
        _reply(printf, HOSTILE_THOUGHT),
        _reply(f"echo {SCAFFOLD.submit_sentinel}", "Submitting."),
    ]
    broken = tasks[1].model_copy(update={"instance_id": "broken__x-1", "repo_dir": None})

    def scripted(task: Task) -> ScriptedBackend:
        return ScriptedBackend(replies)

    asyncio.run(
        run_and_grade(
            [tasks[0], broken], SCAFFOLD, TOOLS, scripted, folder, runtime="local", workers=2
        )
    )
    return folder.root


@pytest.fixture(scope="module")
def damaged_run(gold_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the gold run with what a killed run or a hand edit leaves behind."""
    root = tmp_path_factory.mktemp("runs") / "damaged"
    shutil.copytree(gold_run, root)
    names = sorted(p.name for p in root.iterdir() if p.is_dir())
    only_trajectory, bad_trajectory, bad_result, bad_report = (root / n for n in names[:4])
    for path in only_trajectory.iterdir():
        if path.name != "trajectory.json":
            path.unlink()
    (bad_trajectory / "trajectory.json").write_text('{"schema_version": 1, "task_id": ')
    (bad_result / "result.json").write_text("[1, 2]")
    (bad_report / "report.json").write_text("{not json")
    (root / "report.json").unlink()
    shutil.copytree(root / names[4], root / names[4] / "attempt-1")  # a second attempt
    (root / "not-a-task").mkdir()
    return root


def _trajectories(root: Path) -> dict[str, Trajectory]:
    """The readable trajectories of a run by folder (``ID`` or ``ID/attempt-N``), read
    directly (not through the inspector)."""
    found = {}
    for path in sorted(
        [*root.glob("*/trajectory.json"), *root.glob("*/attempt-*/trajectory.json")]
    ):
        try:
            found[path.parent.relative_to(root).as_posix()] = Trajectory.load(path)
        except ValueError:
            continue
    return found


# -- the view model ----------------------------------------------------------------------------


def test_the_view_of_a_gold_run_agrees_with_the_run_report(gold_run: Path) -> None:
    view = read_run(gold_run)
    report = json.loads((gold_run / "report.json").read_text())
    totals = view.totals
    assert (totals.tasks, totals.resolved) == (
        report["total_instances"],
        len(report["resolved_ids"]),
    )
    assert totals.unresolved == totals.errors == totals.unfinished == 0
    trajectories = _trajectories(gold_run)
    assert {t.instance_id: t.step_count for t in view.tasks} == {
        i: len(t.steps) for i, t in trajectories.items()
    }
    assert totals.steps == sum(len(t.steps) for t in trajectories.values())
    task = view.tasks[0]
    assert not task.notes and task.verdict is not None and task.verdict.resolved
    assert task.patch and task.patch == trajectories[task.instance_id].submission
    assert task.steps and task.steps[0].thought == "Applying the reference patch."
    assert task.steps[0].action_name == "bash" and "git apply" in (task.steps[0].action or "")
    assert task.prompt[0][0] == "system" and task.test_output is not None


def test_the_view_of_a_scripted_run_shows_format_errors_and_errors(scripted_run: Path) -> None:
    view = read_run(scripted_run)
    by_id = {t.instance_id: t for t in view.tasks}
    broken = by_id.pop("broken__x-1")
    assert broken.status == "error" and "has no repo_dir" in (broken.error or "")
    (task,) = by_id.values()
    assert task.status == "unresolved" and task.steps is not None
    first, second = task.steps[0], task.steps[1]
    assert first.format_error and first.action is None and first.thought == NO_ACTION_REPLY
    assert second.thought == HOSTILE_THOUGHT and second.action and "printf" in second.action
    assert second.observation is not None and INJECTED in second.observation
    assert (view.totals.errors, view.totals.unresolved) == (1, 1)


def test_damage_becomes_notes_and_the_rest_is_shown(damaged_run: Path) -> None:
    view = read_run(damaged_run)
    assert any("no report.json" in note for note in view.notes)
    notes = {t.instance_id: " ".join(t.notes) for t in view.tasks}
    only_trajectory, bad_trajectory, bad_result, bad_report = sorted(notes)[:4]
    assert "no result.json" in notes[only_trajectory]
    assert "trajectory.json cannot be read" in notes[bad_trajectory]
    assert "result.json cannot be read" in notes[bad_result]
    assert "report.json cannot be read" in notes[bad_report]
    by_id = {t.instance_id: t for t in view.tasks}
    assert by_id[only_trajectory].status == "unfinished" and by_id[only_trajectory].steps
    assert by_id[bad_trajectory].steps is None and by_id[bad_trajectory].status == "resolved"
    assert "not-a-task" not in by_id
    second = [t for t in view.tasks if t.attempt == 1]
    assert [t.label for t in second] == [f"{sorted(by_id)[4]} #1"] and second[0].steps
    assert (view.totals.tasks, view.totals.attempts) == (len(by_id), len(by_id) + 1)


def test_a_run_without_tests_shows_its_tasks_as_not_graded(
    tasks: list[Task], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``agentkit run --repo`` grades nothing: a finished task is "ungraded", not "unfinished"."""
    folder = RunFolder(tmp_path / "repo-run", "repo-run")
    task = tasks[0]
    gold = GoldBackend(task.patch, FORMAT, TOOLS, SCAFFOLD.submit_sentinel)
    asyncio.run(
        run_and_grade([task], SCAFFOLD, TOOLS, lambda _: gold, folder, runtime="local", grade=False)
    )
    (view,) = read_run(folder.root).tasks
    assert view.status == "ungraded" and view.patch and view.verdict is None
    assert read_run(folder.root).totals.ungraded == 1
    assert inspect_command(folder.root, None, None) == 0
    out = capsys.readouterr().out
    assert "1 not graded" in out and "0 unfinished" in out and "ungraded" in out
    html = render_html(read_run(folder.root))
    assert 'data-total="ungraded">1<' in html and 'data-filter="ungraded"' in html


def test_printable_and_clip() -> None:
    assert printable("a\x07b\x1b[31mred\x1b[0m\r\nz\x00\x7f\x9b\udcff") == "a␇bred\nz␀␡\\x9b\ufffd"
    text = "\n".join(str(n) for n in range(100))
    clipped = clip(text, 10, 10_000)
    assert clipped.split("\n")[:6] == ["0", "1", "2", "3", "4", "5"]
    assert "90 lines not shown" in clipped and clipped.endswith("99")
    assert "characters not shown" in clip("x" * 500, 10, 100)


# -- the terminal ------------------------------------------------------------------------------


def test_the_run_table_lists_every_task_and_the_totals(
    gold_run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert inspect_command(gold_run, None, None) == 0
    out = capsys.readouterr().out
    for instance_id in _trajectories(gold_run):
        assert instance_id in out
    count = len(_trajectories(gold_run))
    assert f"{count} task(s): {count} resolved (100% of graded), 0 unresolved" in out


def test_one_task_step_by_step(scripted_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    instance_id = next(i for i in _trajectories(scripted_run) if i != "broken__x-1")
    assert inspect_command(scripted_run, instance_id, None) == 0
    out = capsys.readouterr().out
    for expected in ["step 1", "step 2", "step 3", "format error:", NO_ACTION_REPLY, INJECTED]:
        assert expected in out
    assert "<b>bold</b> & a bell ␇ and a screen wipe." in out
    assert "\x07" not in out and "\x1b" not in out
    assert "(no changes submitted)" in out and "NOT RESOLVED" in out
    assert "FAIL_TO_PASS 0/" in out and "failing (FAIL_TO_PASS)" in out


def test_an_error_task_and_a_damaged_run_print_notes_not_tracebacks(
    scripted_run: Path, damaged_run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert inspect_command(scripted_run, "broken__x-1", None) == 0
    out = capsys.readouterr().out
    assert "has no repo_dir" in out and "not graded" in out
    assert inspect_command(damaged_run, None, None) == 0
    out = capsys.readouterr().out
    assert "cannot be read" in out and "no result.json" in out and "unfinished" in out
    for task in read_run(damaged_run).tasks:
        assert inspect_command(damaged_run, task.instance_id, None) == 0
    assert "Traceback" not in capsys.readouterr().out


def test_wrong_folders_and_tasks_are_one_line_errors(
    gold_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert inspect_command(tmp_path / "nowhere", None, None) == 2
    assert "is not a folder" in capsys.readouterr().err
    assert inspect_command(gold_run.parent, None, None) == 2
    assert "holds runs, not tasks; pick one: gold" in capsys.readouterr().err
    assert inspect_command(tmp_path, None, None) == 2
    assert "holds no task folders" in capsys.readouterr().err
    assert inspect_command(gold_run, "nope__x-1", None) == 2
    assert "no task 'nope__x-1'" in capsys.readouterr().err
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert inspect_command(gold_run, None, blocker / "out.html") == 2
    assert "cannot write" in capsys.readouterr().err


# -- the HTML report ---------------------------------------------------------------------------


def test_the_page_escapes_everything_it_shows(scripted_run: Path, tmp_path: Path) -> None:
    page = render_html(read_run(scripted_run))
    assert page.count("<script") == 1  # the page's own
    assert "window.__injected" in page and "<img src=x" not in page
    assert "&lt;script&gt;window.__injected" in page and "a &amp; b" in page
    assert not any(ord(c) < 0x20 and c not in "\n\t" for c in page)
    tags = _tags(page)
    assert {name for name, _ in tags} <= SAFE_TAGS, {name for name, _ in tags} - SAFE_TAGS
    links = [value for _, attrs in tags for key, value in attrs if key in ("src", "href")]
    assert all(link.startswith(("#task-", "data:")) for link in links), links
    out = tmp_path / "report.html"
    instance_id = next(t.instance_id for t in read_run(scripted_run).tasks)
    assert inspect_command(scripted_run, instance_id, out) == 0
    assert out.read_text().count('class=task id="task-') == 1


SAFE_TAGS = {
    *"html head meta link title style body h1 h2 h3 p section table tr th td a".split(),
    *"button details summary pre ol ul li div span script".split(),
}


def _tags(page: str) -> list[tuple[str, list[tuple[str, str | None]]]]:
    """Every start tag of ``page`` with its attributes, as a browser's tokenizer sees them."""
    found: list[tuple[str, list[tuple[str, str | None]]]] = []

    class Collector(HTMLParser):
        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            found.append((tag, attrs))

    Collector().feed(page)
    return found


def browser_problem() -> str | None:
    """Why the browser test cannot run here, or ``None``."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install playwright)"
    if not os.access(CHROMIUM, os.X_OK):
        return f"Debian's chromium is not at {CHROMIUM} (apt-get install chromium)"
    return None


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    problem = browser_problem()
    if problem is not None:
        if os.environ.get("CI"):
            pytest.fail(f"Browser tests must run in CI but cannot: {problem}", pytrace=False)
        pytest.skip(f"No headless browser: {problem}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield browser
        finally:
            browser.close()


@pytest.mark.parametrize("run", ["gold_run", "scripted_run", "damaged_run"])
def test_the_page_in_a_real_browser(
    run: str, browser: Any, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    root: Path = request.getfixturevalue(run)
    out = tmp_path / "report.html"
    view = read_run(root)
    write_html(view, out)
    page = browser.new_page()
    page.set_default_timeout(10_000)
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(str(error)))
    own = (out.as_uri(), "data:")  # the page itself and its empty icon; nothing else may load
    page.on("request", lambda r: None if r.url.startswith(own) else problems.append(r.url))
    page.goto(out.as_uri())
    page.wait_for_load_state("load")

    sections = page.locator("section.task")
    assert sections.count() == len(view.tasks)
    trajectories = _trajectories(root)
    for index in range(sections.count()):
        section = sections.nth(index)
        folder = section.get_attribute("data-instance")
        if section.get_attribute("data-attempt") != "0":
            folder += f"/attempt-{section.get_attribute('data-attempt')}"
        expected = len(trajectories[folder].steps) if folder in trajectories else 0
        assert section.locator("li.step").count() == expected, folder
    assert page.locator("li.step").count() == sum(len(t.steps) for t in trajectories.values())

    def total(name: str) -> int:
        return int(page.locator(f'[data-total="{name}"]').inner_text())

    results = [json.loads(p.read_text()) for p in root.glob("*/result.json")]
    if (root / "report.json").exists():
        report = json.loads((root / "report.json").read_text())
        assert total("tasks") == report["total_instances"] == len(results)
        assert total("resolved") == report["resolved_instances"]
        assert total("unresolved") == report["unresolved_instances"]
        assert total("errors") == report["error_instances"]
    task_dirs = [p for p in root.iterdir() if p.is_dir() and any(p.iterdir())]
    attempt_dirs = list(root.glob("*/attempt-*"))
    assert total("tasks") == len(task_dirs)
    assert total("attempts") == len(view.tasks) == len(task_dirs) + len(attempt_dirs)
    assert total("steps") == sum(t.step_count for t in view.tasks)

    assert page.evaluate("typeof window.__injected") == "undefined"
    if run == "scripted_run":
        observations = page.locator("li.step .observation pre").all_inner_texts()
        assert any(INJECTED in text and "a & b" in text for text in observations)
        assert page.locator("li.step .format-error").count() == 1
        page.locator('button[data-filter="error"]').click()
        assert page.locator("section.task:visible").count() == 1
        assert page.locator("tr[data-status]:visible").count() == 1
        page.locator('button[data-filter="all"]').click()
        assert page.locator("section.task:visible").count() == 2
        assert page.locator("details.test-log").count() == 1
        page.locator("details.test-log summary").click()
        assert "Test Exit Code" in page.locator("details.test-log pre").inner_text()
    assert problems == []
    page.close()


def test_a_missing_browser_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys.modules[__name__], "CHROMIUM", "/nonexistent/chromium")
    assert "apt-get install chromium" in (browser_problem() or "")
