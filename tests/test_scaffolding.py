"""Scaffolds as one protocol picked by ``type``; names or dotted paths for scaffold types, tools,
call formats and history processors; the ``submit`` tool and the workspace diff.

User extensions are a real module written to a temporary directory and put on ``sys.path``;
runs use the scripted backend (the subject) with a real local runtime, real git and, through
the harness and the CLI, the bundled example tasks graded for real."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
import yaml
from pydantic import BaseModel
from typer.testing import CliRunner

from agentkit.agent import Agent, ToolLoop
from agentkit.backends import ScriptedBackend
from agentkit.dotted import DottedPathError, resolve_class, resolve_dotted
from agentkit.evals.examples import build_examples
from agentkit.evals.harness import run_and_grade
from agentkit.evals.run_folder import RunFolder
from agentkit.history import KeepLastObservations
from agentkit.runtime import LocalRuntime
from agentkit.scaffold import BaseScaffoldConfig, ScaffoldConfig, ScaffoldConfigError
from agentkit.scaffolding import (
    SCAFFOLD_TYPES,
    Scaffold,
    ScaffoldSpec,
    build_scaffold,
    load_scaffold_config,
    parse_scaffold_config,
    register_scaffold_type,
)
from agentkit.scaffolds import load_scaffold
from agentkit.tasks import Task, load_tasks
from agentkit.tools import Tool, get_format, get_tool
from agentkit.tools.submit import SUBMITTED, SubmitTool
from agentkit.types import ExitStatus, ToolCall, Trajectory
from agentkit.workspace import workspace_diff

EXTENSION = '''
"""A user's package: a scaffold type, a tool, a call format and a history processor."""
from typing import ClassVar

from pydantic import BaseModel

from agentkit.history import HistoryProcessorBase
from agentkit.scaffold import BaseScaffoldConfig
from agentkit.tools import Tool, XmlFormat
from agentkit.types import ExitStatus, Message, Observation, Trajectory
from agentkit.workspace import workspace_diff


class NoteConfig(BaseScaffoldConfig):
    file: str = "NOTE.txt"


class NoteScaffold:
    """Asks the model once and writes its reply to a file: a pipeline with no tools."""

    Config = NoteConfig

    def __init__(self, config, *, tools=None):
        self.config = config

    async def solve(self, task, runtime, backend, *, trajectory_path=None, on_step=None):
        reply = await backend.complete(
            [Message(role="user", content=task.problem_statement)], [], self.config.sampling
        )
        path = f"{runtime.workdir.rstrip('/')}/{self.config.file}"
        await runtime.write_file(path, reply.text)
        trajectory = Trajectory(
            task_id=task.instance_id,
            scaffold=self.config.model_dump(mode="json"),
            backend=backend.describe(),
            exit_status=ExitStatus.SUBMITTED,
            submission=await workspace_diff(runtime, task.base_commit),
        )
        if trajectory_path:
            trajectory.save(trajectory_path)
        return trajectory


class ShoutArguments(BaseModel):
    words: str


class Shout(Tool):
    name: ClassVar[str] = "shout"
    description: ClassVar[str] = "Repeat words in capitals."
    Arguments: ClassVar[type[BaseModel]] = ShoutArguments

    async def execute(self, args, ctx):
        return Observation(output=args.words.upper(), exit_code=0)


class Xml2(XmlFormat):
    name = "xml2"


class CountCalls(HistoryProcessorBase):
    label: str = "counted"
    calls: ClassVar[list[int]] = []

    def apply(self, history, observations, cache):
        self.calls.append(len(history))
        return history


NOT_A_CLASS = 3


class NotATool:
    pass
'''


@pytest.fixture
def ext(tmp_path, monkeypatch) -> str:
    """The extension module's name, importable for this test."""
    folder = tmp_path / "ext"
    folder.mkdir()
    name = f"agentkit_test_ext_{tmp_path.name.replace('-', '_')}"
    (folder / f"{name}.py").write_text(EXTENSION)
    monkeypatch.syspath_prepend(str(folder))
    return name


@pytest.fixture
async def repo():
    async with LocalRuntime() as runtime:
        result = await runtime.run(
            "git init -q . && git config user.email a@b.c && git config user.name t && "
            "printf 'x = 1\\n' > mod.py && git add -A && git commit -qm base && git rev-parse HEAD"
        )
        assert result.exit_code == 0, result.output
        base = result.output.strip().splitlines()[-1]
        yield runtime, Task(instance_id="t-1", problem_statement="Make x two.", base_commit=base)


def mini_data() -> dict:
    return load_scaffold("mini").model_dump(mode="json")


def write_yaml(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


# -- the protocol and the discriminated configs --------------------------------------------------


def test_the_tool_loop_is_a_scaffold_and_built_from_its_config():
    config = load_scaffold("mini")
    assert isinstance(config, ScaffoldConfig) and config.type == "tool_loop"
    scaffold = build_scaffold(config)
    assert isinstance(scaffold, ToolLoop) and isinstance(scaffold, Scaffold)
    assert [tool.name for tool in scaffold.tools] == ["bash"]
    shared = [get_tool("bash")]
    assert build_scaffold(config, tools=shared).tools == shared
    assert SCAFFOLD_TYPES["tool_loop"] is ToolLoop


def test_a_file_without_type_is_a_tool_loop(tmp_path):
    """Scaffold files written before types existed still load, as before."""
    data = mini_data()
    del data["type"]
    path = write_yaml(tmp_path / "legacy.yaml", data)
    for loaded in (load_scaffold(str(path)), ScaffoldConfig.from_yaml(path)):
        assert isinstance(loaded, ScaffoldConfig)
        assert loaded == load_scaffold("mini")


def test_an_unknown_type_is_a_clear_error_listing_the_known_ones(tmp_path):
    path = write_yaml(tmp_path / "s.yaml", {**mini_data(), "type": "agentles"})
    with pytest.raises(ScaffoldConfigError) as info:
        load_scaffold(str(path))
    message = str(info.value)
    assert "Unknown scaffold type 'agentles'" in message and "tool_loop" in message
    assert "dotted path" in message


def test_a_typo_in_a_typed_file_names_the_field(tmp_path):
    path = write_yaml(tmp_path / "s.yaml", {**mini_data(), "max_step": 3})
    with pytest.raises(ScaffoldConfigError, match="max_step"):
        load_scaffold_config(path)


def test_scaffold_spec_validates_by_type_and_dumps_every_field(ext):
    class Sweep(BaseModel):
        scaffold: ScaffoldSpec

    sweep = Sweep.model_validate(
        {"scaffold": {k: v for k, v in mini_data().items() if k != "type"}}
    )
    assert isinstance(sweep.scaffold, ScaffoldConfig)
    dumped = sweep.model_dump(mode="json")
    assert dumped["scaffold"]["system_template"] == mini_data()["system_template"]
    assert Sweep.model_validate(dumped) == sweep

    custom = Sweep.model_validate(
        {"scaffold": {"type": f"{ext}:NoteScaffold", "name": "note", "file": "A.txt"}}
    )
    assert type(custom.scaffold).__name__ == "NoteConfig"
    again = Sweep.model_validate_json(custom.model_dump_json())
    assert again.model_dump() == custom.model_dump()
    assert again.model_dump()["scaffold"]["file"] == "A.txt"


def test_a_registered_scaffold_type_is_found_by_name(ext, monkeypatch):
    import importlib
    from typing import Literal

    module = importlib.import_module(ext)

    class NamedConfig(module.NoteConfig):
        type: Literal["note"] = "note"

    class Named(module.NoteScaffold):
        Config = NamedConfig

    monkeypatch.setitem(SCAFFOLD_TYPES, "note", Named)  # undone after the test
    register_scaffold_type(Named)
    config = parse_scaffold_config({"type": "note", "name": "n"})
    assert isinstance(config, NamedConfig)
    assert isinstance(build_scaffold(config), Named)


def test_registering_a_type_needs_a_named_config():
    class NoName:
        Config = BaseScaffoldConfig

        async def solve(self, *args, **kwargs): ...

    with pytest.raises(ValueError, match="needs a default for its 'type' field"):
        register_scaffold_type(NoName)


@pytest.mark.parametrize(
    ("attribute", "message"),
    [
        ("Shout", "is not a scaffold class"),
        ("Missing", "has no attribute 'Missing'"),
    ],
)
def test_a_bad_scaffold_type_path_is_a_clear_error(ext, attribute, message):
    with pytest.raises(ScaffoldConfigError, match=message):
        parse_scaffold_config({"type": f"{ext}:{attribute}", "name": "x"})


# -- a user's scaffold type through the harness and the CLI ---------------------------------------


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return build_examples(tmp_path_factory.mktemp("examples"))


async def test_a_user_scaffold_type_runs_through_the_harness(ext, dataset, tmp_path):
    task = load_tasks(dataset)[0]
    config = parse_scaffold_config({"type": f"{ext}:NoteScaffold", "name": "note"})
    folder = RunFolder(tmp_path / "run", "run")
    results = await run_and_grade(
        [task],
        config,
        [],
        lambda task: ScriptedBackend(["a note"]),
        folder,
        runtime="local",
    )
    assert [r.exit_status for r in results] == ["submitted"]
    assert results[0].resolved is False and results[0].error is None
    trajectory = Trajectory.load(folder.trajectory_path(task.instance_id, 0))
    assert "+++ b/NOTE.txt" in trajectory.submission and "+a note" in trajectory.submission
    assert trajectory.scaffold["type"] == f"{ext}:NoteScaffold"


def test_a_user_scaffold_type_runs_through_the_cli(ext, dataset, tmp_path):
    from agentkit.cli import app

    task_id = load_tasks(dataset)[0].instance_id
    scaffold = write_yaml(
        tmp_path / "note.yaml",
        {"type": f"{ext}:NoteScaffold", "name": "note", "file": "CLI.txt"},
    )
    replies = write_yaml(tmp_path / "replies.yaml", ["from the cli"])  # type: ignore[arg-type]
    args = ["run", "--dataset", str(dataset), "--task", task_id, "--runtime", "local"]
    args += ["--scaffold", str(scaffold), "--backend", f"scripted:{replies}"]
    result = CliRunner().invoke(app, [*args, "--output", str(tmp_path / "runs")])
    assert result.exit_code == 0, result.output
    patch = (tmp_path / "runs" / "note__scripted" / task_id / "patch.diff").read_text()
    assert "+++ b/CLI.txt" in patch and "+from the cli" in patch

    gold = CliRunner().invoke(app, [*args[:-2], "--output", str(tmp_path / "gold")])
    assert gold.exit_code != 0
    message = " ".join(gold.output.split())
    assert "through a tool_loop scaffold's tools" in message and "Traceback" not in message


# -- tools, call formats and history processors by dotted path -----------------------------------


async def test_dotted_tools_format_and_history_drive_the_loop(ext, repo, tmp_path):
    runtime, task = repo
    data = {
        **mini_data(),
        "tools": ["bash", f"{ext}:Shout", "submit"],
        "call_format": f"{ext}:Xml2",
        "history": [{"type": f"{ext}:CountCalls", "label": "mine"}],
    }
    config = load_scaffold(str(write_yaml(tmp_path / "s.yaml", data)))
    assert isinstance(config, ScaffoldConfig)
    assert config.history[0].model_dump() == {"type": f"{ext}:CountCalls", "label": "mine"}
    assert ScaffoldConfig.model_validate(yaml.safe_load(config.to_yaml())) == config
    scaffold = build_scaffold(config)
    fmt, tools = config.build_format(), scaffold.tools
    assert [tool.name for tool in tools] == ["bash", "shout", "submit"]
    replies = [
        fmt.render(ToolCall(name="shout", arguments={"words": "hello"}), tools),
        fmt.render(ToolCall(name="bash", arguments={"command": "echo y > y.txt"}), tools),
        fmt.render(ToolCall(name="submit", arguments={}), tools),
    ]
    trajectory = await scaffold.solve(task, runtime, ScriptedBackend(replies))
    assert trajectory.exit_status is ExitStatus.SUBMITTED, trajectory.exit_message
    assert trajectory.steps[0].observation.output == "HELLO"
    assert "+++ b/y.txt" in trajectory.submission and not trajectory.autosubmitted
    assert type(config.history[0]).calls == [2, 4, 6]  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("tools", ["bash", "nope"], "Unknown tool 'nope'. The known tools are: bash,"),
        ("tools", ["{ext}:NotATool"], "is a class NotATool, not a subclass of agentkit.tools"),
        ("tools", ["{ext}:NOT_A_CLASS"], "is a int, not a subclass"),
        ("tools", ["no_such_module_xyz:Tool"], "cannot import module 'no_such_module_xyz'"),
        ("tools", ["{ext}:Nope"], "has no attribute 'Nope'"),
        ("call_format", "json", "Unknown call format 'json'. The known formats are: bash_block,"),
        ("call_format", "{ext}:Shout", "not a subclass of agentkit.tools.call_format.CallFormat"),
        ("history", [{"type": "last_n"}], "Unknown history processor type 'last_n'"),
        ("history", [{"type": "{ext}:Shout"}], "not a subclass of agentkit.history"),
        ("history", [{"type": "last_n_observations", "m": 2}], "'m'"),
    ],
)
def test_bad_names_and_paths_fail_at_load_with_clear_errors(ext, tmp_path, field, value, message):
    value = json.loads(json.dumps(value).replace("{ext}", ext))
    path = write_yaml(tmp_path / "s.yaml", {**mini_data(), field: value})
    with pytest.raises(ScaffoldConfigError) as info:
        load_scaffold(str(path))
    text = str(info.value)  # the validation wording lower-cases a message's first letter
    assert message.replace("{ext}", ext).lower() in text.lower()
    assert f"'{field}" in text


def test_resolve_dotted_names_each_problem(ext):
    assert resolve_dotted(f"{ext}:Shout.name") == "shout"
    assert issubclass(resolve_class(f"{ext}:Shout", Tool, "tool"), Tool)
    for path, message in [
        ("no_colon", "is not a dotted path"),
        (":Shout", "is not a dotted path"),
        (f"{ext}:", "is not a dotted path"),
        (f"{ext}.sub:X", f"cannot import module '{ext}.sub'"),
    ]:
        with pytest.raises(DottedPathError, match=message):
            resolve_dotted(path, "tool")


def test_a_module_that_fails_to_import_says_why(tmp_path, monkeypatch):
    (tmp_path / "broken_ext_mod.py").write_text("raise RuntimeError('no config here')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(DottedPathError, match="RuntimeError: no config here"):
        resolve_dotted("broken_ext_mod:X", "tool")


def test_registered_history_processors_round_trip():
    config = ScaffoldConfig.model_validate(
        {**mini_data(), "history": [{"type": "last_n_observations", "n": 2}]}
    )
    assert config.history == [KeepLastObservations(n=2)]
    assert ScaffoldConfig.model_validate(config.model_dump(mode="json")) == config


# -- submission: the submit tool and the workspace diff ------------------------------------------


@pytest.mark.parametrize("call_format", ["native", "xml", "bash_block"])
async def test_the_submit_tool_ends_the_run_in_every_format(repo, call_format):
    runtime, task = repo
    config = load_scaffold("mini").model_copy(
        update={"call_format": call_format, "tools": ["bash", "submit"]}
    )
    fmt, tools = get_format(call_format), [get_tool("bash"), get_tool("submit")]
    replies = [
        fmt.render(ToolCall(name="bash", arguments={"command": "sed -i s/1/2/ mod.py"}), tools),
        fmt.render(ToolCall(name="submit", arguments={}), tools),
    ]
    trajectory = await Agent(config, ScriptedBackend(replies), runtime, tools).run(task)
    assert trajectory.exit_status is ExitStatus.SUBMITTED, trajectory.exit_message
    assert trajectory.steps[-1].observation.output == SUBMITTED
    assert "-x = 1\n+x = 2" in trajectory.submission and not trajectory.autosubmitted
    assert isinstance(get_tool("submit"), SubmitTool)


async def test_workspace_diff_includes_untracked_files_and_is_exact(repo):
    runtime, task = repo
    await runtime.write_file(f"{runtime.workdir}/new.txt", "no newline")
    await runtime.write_file(f"{runtime.workdir}/mod.py", "x = 3\n")
    diff = await workspace_diff(runtime, task.base_commit)
    assert "+++ b/new.txt" in diff and "\\ No newline at end of file" in diff
    assert "-x = 1\n+x = 3" in diff
    assert await workspace_diff(runtime) == diff  # against HEAD, which is the base here


async def test_workspace_diff_outside_a_repository_is_a_sandbox_error():
    from agentkit.runtime.base import SandboxError

    async with LocalRuntime() as runtime:
        with pytest.raises(SandboxError, match="could not compute the submission diff"):
            await workspace_diff(runtime)


def test_the_scaffold_doc_mentions_every_scaffold_field():
    doc = (Path(__file__).resolve().parent.parent / "docs" / "scaffolds.md").read_text()
    for field in ScaffoldConfig.model_fields:
        assert f"`{field}`" in doc, field
    assert textwrap.dedent("type: tool_loop") in doc


def test_a_file_extending_a_bundled_scaffold_holds_only_its_changes(tmp_path):
    from agentkit.scaffolds import load_scaffold

    short = tmp_path / "short.yaml"
    short.write_text("extends: mini\nname: short\nlimits:\n  max_steps: 2\n")
    config = load_scaffold(str(short))
    mini = load_scaffold("mini")
    assert isinstance(config, ScaffoldConfig) and isinstance(mini, ScaffoldConfig)
    assert config.name == "short" and config.limits.max_steps == 2
    # Mappings merge key by key: the other limits and everything else are mini's.
    assert config.limits.max_cost == mini.limits.max_cost
    assert config.system_template == mini.system_template and config.tools == mini.tools
    # A chain of files, relative to each other.
    (tmp_path / "shorter.yaml").write_text("extends: short.yaml\nlimits:\n  max_cost: 0.5\n")
    chained = load_scaffold(str(tmp_path / "shorter.yaml"))
    assert isinstance(chained, ScaffoldConfig)
    assert (chained.name, chained.limits.max_steps, chained.limits.max_cost) == ("short", 2, 0.5)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("extends: nope\n", "neither a bundled scaffold"),
        ("extends: self.yaml\n", "round in a circle"),
        ("extends: [mini]\n", "a scaffold name or a file path"),
        ("extends: mini\nlimits:\n  max_stepz: 2\n", "max_stepz"),
    ],
)
def test_extends_errors_are_clear(tmp_path, text, message):
    from agentkit.scaffolds import load_scaffold

    path = tmp_path / "self.yaml"
    path.write_text(text)
    with pytest.raises(ScaffoldConfigError, match=message):
        load_scaffold(str(path))


def test_a_cost_limit_of_zero_means_no_limit_in_a_file_and_on_the_command_line() -> None:
    """A run that stops before its first call has no use: 0 reads as no limit, like ``null``,
    whether the scaffold file says it or ``--max-cost 0`` overrides the scaffold's 3 dollars."""
    from agentkit.cli.runner import RunSettings
    from agentkit.scaffold import Limits

    assert Limits(max_cost=0).max_cost is None and Limits(max_cost=0.5).max_cost == 0.5
    mini = load_scaffold("mini")
    assert mini.limits.max_cost == 3.0
    overridden = RunSettings(max_cost=0).apply_overrides(mini)
    assert overridden.limits.max_cost is None
    assert RunSettings(max_cost=2).apply_overrides(mini).limits.max_cost == 2
    with pytest.raises(ValueError, match="max_cost"):
        Limits(max_cost=-1)
