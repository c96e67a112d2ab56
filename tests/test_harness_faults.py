"""The harness under faults, on the real Docker engine with the bundled examples and the gold
backend: the harness process killed with SIGKILL mid-run and run again, a grading container
killed in the middle of the tests, and Ctrl-C of a run with several workers.

The CLI runs as a real subprocess (in its own session, so a signal reaches it and its children
the way a terminal's would, and never pytest). Every run gets its own ``--run-id``, which is the
``agentkit.run`` label of its containers: that is how leftovers are counted here. The session's
own leak check (conftest.py) only sees containers of the pytest process, so each test removes
anything left of its run itself, after its assertions.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from agentkit.evals.examples import build_examples
from agentkit.evals.harness import grade_predictions
from agentkit.evals.predictions import Prediction
from agentkit.evals.run_folder import RunFolder
from agentkit.runtime.docker_cleanup import LABEL_RUN
from agentkit.tasks import Task, load_tasks

pytestmark = pytest.mark.docker

ALREADY_DONE = "(already done, not rerun)"


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_examples(tmp_path_factory.mktemp("examples"))


@pytest.fixture(scope="module")
def tasks(dataset: Path) -> list[Task]:
    return load_tasks(dataset)


@pytest.fixture
def run_id() -> Iterator[str]:
    """A run id of its own; whatever container of it is left at the end is removed."""
    name = f"faults-{uuid.uuid4().hex[:10]}"
    yield name
    import docker

    client = docker.from_env()
    try:
        for entry in client.api.containers(all=True, filters={"label": f"{LABEL_RUN}={name}"}):
            try:
                client.api.remove_container(entry["Id"], force=True)
            except docker.errors.APIError:
                continue
    finally:
        client.close()


# -- helpers ------------------------------------------------------------------------------------


def containers(run: str) -> list[tuple[str, str]]:
    """(name, state) of every container, in any state, labelled with run id ``run``."""
    import docker

    client = docker.from_env()
    try:
        found = client.api.containers(all=True, filters={"label": f"{LABEL_RUN}={run}"})
    finally:
        client.close()
    return [((c.get("Names") or [c["Id"]])[0].lstrip("/"), c["State"]) for c in found]


def running(run: str) -> list[str]:
    return [name for name, state in containers(run) if state == "running"]


def finished(run_dir: Path, ids: list[str]) -> set[str]:
    """Tasks of the folder that are finished: their per-instance report.json exists."""
    return {i for i in ids if (run_dir / i / "report.json").exists()}


def cli_command(dataset: Path, output: Path, run: str, workers: int) -> list[str]:
    return [
        sys.executable, "-m", "agentkit.cli", "run", "--dataset", str(dataset),
        "--output", str(output), "--run-id", run, "--workers", str(workers),
    ]  # fmt: skip


def cli_env() -> dict[str, str]:
    # Wide, plain output: one progress line per task, never wrapped.
    return {**os.environ, "COLUMNS": "250", "NO_COLOR": "1", "TERM": "dumb"}


def start_cli(command: list[str], logs: Path) -> subprocess.Popen[bytes]:
    """The CLI in a session (and process group) of its own, output into files."""
    with (logs / "stdout.txt").open("wb") as out, (logs / "stderr.txt").open("wb") as err:
        return subprocess.Popen(
            command, stdout=out, stderr=err, env=cli_env(), start_new_session=True
        )


def wait_mid_run(
    proc: subprocess.Popen[bytes], run_dir: Path, ids: list[str], run: str, timeout: float = 60
) -> list[str]:
    """Until at least one task is finished but not all, while a sandbox of the run is running;
    the sandboxes seen running then (asking again could miss one that just closed)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"the run ended (exit {proc.returncode}) before the signal"
        done = finished(run_dir, ids)
        sandboxes = running(run) if 0 < len(done) < len(ids) else []
        if sandboxes:
            return sandboxes
        time.sleep(0.02)
    pytest.fail(f"no moment with some but not all tasks finished within {timeout:g} s")


def children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def only_never_started(run: str, settle: float) -> bool:
    """Whether every container of ``run`` is one that was created but never started, now and
    still ``settle`` seconds later."""
    if any(state != "created" for _, state in containers(run)):
        return False
    time.sleep(settle)
    return all(state == "created" for _, state in containers(run))


def wait_until(condition, timeout: float, step: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(step)
    return bool(condition())


def flat(text: str) -> str:
    return " ".join(text.split())


def progress_lines(output: str) -> dict[str, list[str]]:
    """Instance id → the progress lines (``[k/N] ID: verdict``) that name it."""
    lines: dict[str, list[str]] = {}
    for line in output.splitlines():
        match = re.match(r"\s*\[\d+/\d+\] (\S+): (.*)$", line)
        if match:
            lines.setdefault(match.group(1), []).append(match.group(2))
    return lines


def stamp(path: Path) -> tuple[bytes, int]:
    return path.read_bytes(), path.stat().st_mtime_ns


# -- 1. kill -9 of the harness, then the same command again -------------------------------------


def test_a_harness_killed_with_sigkill_leaves_no_container_and_the_rerun_finishes_the_rest(
    dataset: Path, tasks: list[Task], tmp_path: Path, run_id: str
) -> None:
    ids = [t.instance_id for t in tasks]
    run_dir = tmp_path / "runs" / run_id
    command = cli_command(dataset, tmp_path / "runs", run_id, workers=2)
    proc = start_cli(command, tmp_path)
    helpers: list[int] = []
    try:
        sandboxes = wait_mid_run(proc, run_dir, ids, run_id)
        helpers = children_of(proc.pid)  # `docker exec` clients of the shells and commands
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=10) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert sandboxes, "no sandbox was running at the kill"

    # Nothing ran the dead harness's cleanup: the containers end because their keep-alive
    # process reads the owner's attach connection, which the kernel closed (docker_cleanup,
    # layer 3), and --rm removes them. Only a container created but never started at the
    # moment of the kill can remain, for the next run's reaper (layer 4). A start in flight at
    # the kill can still turn a "created" container into a running one, which then ends the
    # same way: so that state must hold for a while, not just once.
    assert wait_until(lambda: only_never_started(run_id, settle=2), timeout=20), (
        f"containers of the killed run still there: {containers(run_id)}"
    )
    assert not set(sandboxes) & {name for name, _ in containers(run_id)}
    assert wait_until(lambda: not any(alive(pid) for pid in helpers), timeout=10), (
        "`docker exec` clients of the killed harness outlived their containers"
    )

    before = finished(run_dir, ids)  # the process is dead: this is final
    assert 0 < len(before) < len(ids)
    kept = {i: (stamp(run_dir / i / "report.json"), stamp(run_dir / i / "trajectory.json"))
            for i in before}  # fmt: skip

    again = subprocess.run(command, capture_output=True, text=True, env=cli_env(), timeout=180)
    assert again.returncode == 0, again.stdout + again.stderr
    lines = progress_lines(again.stdout)
    assert sorted(lines) == sorted(ids) and all(len(v) == 1 for v in lines.values()), lines
    for instance_id, (verdict,) in lines.items():
        assert verdict.startswith("resolved"), (instance_id, verdict)
        assert (ALREADY_DONE in verdict) == (instance_id in before), (instance_id, verdict)
    for instance_id, files in kept.items():  # not run again: its files were not rewritten
        now = (stamp(run_dir / instance_id / "report.json"),
               stamp(run_dir / instance_id / "trajectory.json"))  # fmt: skip
        assert now == files, instance_id

    assert finished(run_dir, ids) == set(ids)
    for instance_id in ids:
        result = json.loads((run_dir / instance_id / "result.json").read_text())
        assert result["resolved"] is True and result["error"] is None, result
    report = json.loads((run_dir / "report.json").read_text())
    assert report["resolved_ids"] == sorted(ids) and report["total_instances"] == len(ids)
    assert report["error_ids"] == [] and report["unresolved_ids"] == []
    predicted = Counter(
        json.loads(line)["instance_id"]
        for line in (run_dir / "preds.jsonl").read_text().splitlines()
    )
    assert predicted == Counter(ids)
    assert containers(run_id) == []  # the rerun reaped what the dead run could not end


# -- 2. a grading container killed in the middle of the tests -----------------------------------

SLEEP_S = 6
SLOW_TESTS = f"sleep {SLEEP_S}; python3 -m pytest -rA -p no:cacheprovider {{test_files}}"


def kill_when_testing(run: str, timeout: float) -> str:
    """Wait until a container of ``run`` runs the test command's ``sleep``; ``docker kill`` it."""
    import docker

    client = docker.from_env()
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for entry in client.api.containers(filters={"label": f"{LABEL_RUN}={run}"}):
                try:
                    top = client.api.top(entry["Id"])
                except docker.errors.APIError:
                    continue  # not running (any more)
                if any(row[-1].startswith(f"sleep {SLEEP_S}") for row in top["Processes"] or []):
                    subprocess.run(["docker", "kill", entry["Id"]], check=True, capture_output=True)
                    return (entry.get("Names") or [entry["Id"]])[0].lstrip("/")
            time.sleep(0.05)
    finally:
        client.close()
    raise AssertionError(f"no grading container of {run} ran the tests within {timeout:g} s")


async def test_a_grading_container_killed_mid_test_is_an_error_that_a_rerun_grades(
    tasks: list[Task], tmp_path: Path, run_id: str
) -> None:
    task = tasks[0].model_copy(update={"test_cmd": SLOW_TESTS})
    instance_id = task.instance_id
    predictions = {
        instance_id: Prediction(
            instance_id=instance_id, model_patch=task.patch, model_name_or_path="gold"
        )
    }
    folder = RunFolder(tmp_path / run_id, run_id)

    started = time.monotonic()
    killed, (result,) = await asyncio.gather(
        asyncio.to_thread(kill_when_testing, run_id, 60),
        grade_predictions([task], predictions, folder, runtime="docker"),
    )
    assert time.monotonic() - started < SLEEP_S + 30
    assert killed
    assert result.error is not None and not result.resolved, result
    assert not (folder.task_dir(instance_id) / "report.json").exists()
    stored = json.loads((folder.task_dir(instance_id) / "result.json").read_text())
    assert stored["error"] == result.error and not stored["resolved"]
    assert "sandbox failed" in result.error and "exited with code 137" in result.error, result
    report = json.loads((folder.root / "report.json").read_text())
    assert report["error_ids"] == [instance_id]
    assert report["resolved_ids"] == report["unresolved_ids"] == report["completed_ids"] == []
    assert containers(run_id) == []

    (again,) = await grade_predictions([task], predictions, folder, runtime="docker")
    assert again.error is None and again.resolved is True and not again.resumed, again
    assert (folder.task_dir(instance_id) / "report.json").exists()
    report = json.loads((folder.root / "report.json").read_text())
    assert report["resolved_ids"] == [instance_id] and report["error_ids"] == []
    assert containers(run_id) == []


# -- 3. Ctrl-C of a run with three workers ------------------------------------------------------


def test_ctrl_c_of_a_docker_run_exits_2_cleanly_and_keeps_finished_tasks(
    dataset: Path, tasks: list[Task], tmp_path: Path, run_id: str
) -> None:
    ids = [t.instance_id for t in tasks]
    run_dir = tmp_path / "runs" / run_id
    command = cli_command(dataset, tmp_path / "runs", run_id, workers=3)
    proc = start_cli(command, tmp_path)
    try:
        wait_mid_run(proc, run_dir, ids, run_id)
        os.killpg(proc.pid, signal.SIGINT)  # a terminal's Ctrl-C: the whole foreground group
        code = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    stdout = (tmp_path / "stdout.txt").read_text()
    stderr = (tmp_path / "stderr.txt").read_text()
    assert code == 2, stdout + stderr
    assert "Interrupted. Finished tasks and steps are on disk" in flat(stderr), stderr
    assert "Traceback" not in stdout + stderr, stdout + stderr
    assert containers(run_id) == []  # at exit already, not only eventually

    done = finished(run_dir, ids)
    assert 0 < len(done) < len(ids)
    for instance_id in done:
        result = json.loads((run_dir / instance_id / "result.json").read_text())
        assert result["resolved"] is True and result["error"] is None, result
        assert (run_dir / instance_id / "trajectory.json").exists()
    report = json.loads((run_dir / "report.json").read_text())
    assert report["resolved_ids"] == report["completed_ids"] == sorted(done), report
    assert report["error_ids"] == [], report["errors"]  # an interrupted task is no error

    again = subprocess.run(command, capture_output=True, text=True, env=cli_env(), timeout=180)
    assert again.returncode == 0, again.stdout + again.stderr
    assert flat(again.stdout).count(ALREADY_DONE) == len(done)
    assert json.loads((run_dir / "report.json").read_text())["resolved_ids"] == sorted(ids)
    assert containers(run_id) == []
