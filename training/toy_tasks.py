"""A toy environment for reinforcement learning: tiny repair tasks in real git repositories.

A policy trained with RL must solve some tasks and fail others before it can improve, and a
2-layer model with a 2048-token context can only learn a very small skill. Each toy task asks
to set one constant of a one-file repository to a value the problem statement names
("Set VALUE in answer.py to 42."); one shell command solves it
(``echo 'VALUE = 42' > answer.py``), so the skill is copying a number or a short word from the
statement into the command. Everything around it is real: a git repository at ``base_commit``,
a gold ``patch`` and a ``test_patch`` that are ``git diff`` output, pytest tests named in
``FAIL_TO_PASS`` / ``PASS_TO_PASS``, so the local and Docker runtimes and the SWE-bench grader
treat a toy task exactly like any other.

Generation is a pure function of :class:`ToyTaskConfig` (the seed included): the same config
gives the same statements, patches and commits on every machine.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from agentkit.evals.examples.build import build_example
from agentkit.evals.examples.spec import ExampleSpec
from agentkit.tasks import Task, save_tasks

__all__ = [
    "TOY_DATASET_NAME",
    "TOY_REPO_PREFIX",
    "ToyKind",
    "ToyTaskConfig",
    "build_toy_tasks",
    "solution_command",
    "split_tasks",
]

TOY_REPO_PREFIX = "agentkit-toy"
TOY_DATASET_NAME = "toy_tasks.jsonl"
SOLUTION_FIELD = "toy_solution"
"""The extra task field holding the one-line shell command that solves the task."""

ToyKind = Literal["number", "word"]
"""``number``: an integer constant; ``word``: a short lower-case string constant."""

_NAMES: dict[ToyKind, tuple[str, ...]] = {
    "number": ("VALUE", "LIMIT", "COUNT", "SIZE"),
    "word": ("COLOR", "NAME", "MODE"),
}
_WORDS = (
    "red", "blue", "green", "gray", "gold", "pink", "cyan", "lime", "teal", "navy",
    "fast", "slow", "safe", "loud", "calm", "bold", "warm", "cold", "dark", "soft",
)  # fmt: skip
_FILE = "answer.py"
_TEST_FILE = "tests/test_answer.py"
TEST_COMMAND = (
    "PYTEST_DISABLE_PLUGIN_AUTOLOAD=1 python3 -m pytest -rA -p no:cacheprovider {test_files}"
)
"""The toy's test command: plain pytest without the plugins an environment may have installed
(their imports took a second of every grade here, three times what the toy's own tests need;
an RL step grades dozens of rollouts)."""


class ToyTaskConfig(BaseModel):
    """How many toy tasks to make, of which kinds, from which seed."""

    model_config = ConfigDict(extra="forbid")

    count: int = Field(default=32, ge=1)
    seed: int = 0
    kinds: list[ToyKind] = Field(default_factory=lambda: list[ToyKind](["number"]), min_length=1)
    """Each task draws its kind from this list."""
    max_value: int = Field(default=99, ge=2)
    """Numbers are drawn from 1..max_value (the base commit holds a different one)."""
    vary_names: bool = False
    """Draw the constant's name from a few choices instead of always ``VALUE`` / ``COLOR``:
    a harder variant, where the name must be copied too."""


def solution_command(task: Task) -> str:
    """The one-line shell command that solves a toy task (``KeyError`` for other tasks)."""
    extra = task.model_extra or {}
    if SOLUTION_FIELD not in extra:
        raise KeyError(f"{task.instance_id} is not a toy task (no {SOLUTION_FIELD!r} field)")
    return str(extra[SOLUTION_FIELD])


def build_toy_tasks(out_dir: str | Path, config: ToyTaskConfig | None = None) -> list[Task]:
    """Create ``config.count`` toy repositories under ``out_dir/repos`` (replacing what is
    there), write ``out_dir/toy_tasks.jsonl`` and return the tasks, in generation order."""
    config = config or ToyTaskConfig()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(config.seed)
    tasks = []
    for index in range(config.count):
        spec, command = _spec(rng, index, config)
        built = build_example(spec, out / "repos" / spec.name)
        family = f"answer-s{config.seed}"
        tasks.append(
            built.model_copy(
                update={
                    "instance_id": f"{TOY_REPO_PREFIX}__{family}-{index}",
                    "repo": f"{TOY_REPO_PREFIX}/{family}",
                    "test_cmd": TEST_COMMAND,
                    SOLUTION_FIELD: command,
                }
            )
        )
    save_tasks(tasks, out / TOY_DATASET_NAME)
    return tasks


def split_tasks(tasks: list[Task], train: int) -> tuple[list[Task], list[Task]]:
    """The first ``train`` tasks and the rest: a training split and a held-out split (the
    tasks are already in a random order, so a prefix is a random sample)."""
    if not 0 <= train <= len(tasks):
        raise ValueError(f"cannot take {train} training tasks from {len(tasks)}")
    return tasks[:train], tasks[train:]


def _spec(rng: random.Random, index: int, config: ToyTaskConfig) -> tuple[ExampleSpec, str]:
    """One task's repository, fix and tests, and the command that solves it."""
    kind = rng.choice(config.kinds)
    names = _NAMES[kind] if config.vary_names else _NAMES[kind][:1]
    name = rng.choice(names)
    if kind == "number":
        old, new = rng.sample(range(1, config.max_value + 1), 2)
        old_text, new_text = str(old), str(new)
        shown = new_text
        check = "isinstance(answer.{name}, int)"
    else:
        old_word, new_word = rng.sample(_WORDS, 2)
        old_text, new_text = f'"{old_word}"', f'"{new_word}"'
        shown = new_word
        check = "isinstance(answer.{name}, str)"
    line = f"{name} = {new_text}"
    base_tests = (
        "import answer\n\n\n"
        f"def test_{name.lower()}_has_the_right_type():\n"
        f"    assert {check.format(name=name)}\n"
    )
    new_tests = (
        base_tests + f"\n\ndef test_{name.lower()}_is_set():\n"
        f"    assert answer.{name} == {new_text}\n"
    )
    spec = ExampleSpec(
        name=f"answer-s{config.seed}-{index}",
        number=index,
        version="1.0",
        problem_statement=f"Set {name} in {_FILE} to {shown}.",
        base_files={
            _FILE: f"{name} = {old_text}\n",
            "tests/__init__.py": "",
            _TEST_FILE: base_tests,
            "conftest.py": "",  # puts the repository root on sys.path for pytest
        },
        fix_files={_FILE: line + "\n"},
        test_files={_TEST_FILE: new_tests},
        fail_to_pass=[f"{_TEST_FILE}::test_{name.lower()}_is_set"],
        pass_to_pass=[f"{_TEST_FILE}::test_{name.lower()}_has_the_right_type"],
    )
    return spec, f"echo '{line}' > {_FILE}"
