"""The ``agentkit`` command line: the composition root that wires tasks, scaffolds, backends,
runtimes and the grader together.

Heavy modules are imported inside the commands so that ``agentkit --help`` starts fast.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import typer

if TYPE_CHECKING:
    from agentkit.training.pipeline import SFTDataConfig

app = typer.Typer(
    help="Build, run, evaluate and train software-engineering agents.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

DEFAULT_EXAMPLES_DIR = Path.home() / ".cache" / "agentkit" / "examples"


def _print_version(value: bool) -> None:
    if value:
        from agentkit import __version__

        typer.echo(f"agentkit {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Build, run, evaluate and train software-engineering agents."""


# -- options shared by `run` and `eval` ----------------------------------------------------------

DatasetOption = Annotated[
    Path | None,
    typer.Option(
        help="SWE-bench-format dataset: JSON, JSONL, a folder of them, parquet, or a saved Hugging Face dataset (PATH:SPLIT). Default: the bundled examples."
    ),
]
TaskOption = Annotated[
    list[str] | None,
    typer.Option("--task", "-t", help="Only this instance id (repeatable). Default: every task."),
]
FilterOption = Annotated[
    str | None,
    typer.Option("--filter", help="Only instance ids matching this regular expression."),
]
SliceOption = Annotated[
    str | None, typer.Option("--slice", help="A slice of the tasks, like 0:10 or ::2.")
]
RuntimeOption = Annotated[
    str,
    typer.Option(help="Sandbox: 'docker' (isolated container) or 'local' (a host work dir)."),
]
OutputOption = Annotated[Path, typer.Option(help="Where runs are written.")]
RerunOption = Annotated[bool, typer.Option(help="Run or grade tasks again even if already graded.")]
WorkersOption = Annotated[
    int, typer.Option(min=1, help="Tasks at the same time, each in its own sandbox.")
]
ExecutorOption = Annotated[
    str,
    typer.Option(
        help="Where tasks run: 'local' (this process) or 'ray' (Ray tasks on a Ray cluster, "
        "each node with its own Docker engine; needs the `ray` extra)."
    ),
]
RayAddressOption = Annotated[
    str | None,
    typer.Option(
        help="With --executor ray: the cluster to attach to ('auto' or HOST:PORT). "
        "Default: a local Ray instance, started if none runs."
    ),
]


@app.command()
def run(
    dataset: DatasetOption = None,
    task: TaskOption = None,
    pattern: FilterOption = None,
    slice_: SliceOption = None,
    scaffold: Annotated[
        str, typer.Option(help="Bundled scaffold name or a scaffold YAML file.")
    ] = "mini",
    backend: Annotated[
        str,
        typer.Option(
            help="Which model answers: 'gold' replays each task's reference patch (a sanity run, "
            "not a model); 'scripted:FILE' replays a YAML/JSON list of replies; "
            "'openai:MODEL' or 'openai:MODEL@URL', 'litellm:MODEL', 'vllm:PATH' (starts a local vLLM "
            "server), 'hf:PATH' (a local transformers model), or a backend config file."
        ),
    ] = "gold",
    runtime: RuntimeOption = "docker",
    output: OutputOption = Path("runs"),
    run_id: Annotated[
        str | None,
        typer.Option(
            help="Run name (default: scaffold + backend, plus a hash of the configuration when "
            "that folder holds a run with another one)."
        ),
    ] = None,
    rerun: RerunOption = False,
    workers: WorkersOption = 1,
    attempts: Annotated[
        int,
        typer.Option(min=1, help="Runs per task (distinct seeds); the report gives pass@k."),
    ] = 1,
    executor: ExecutorOption = "local",
    ray_address: RayAddressOption = None,
    max_steps: Annotated[
        int | None, typer.Option(min=1, help="Steps per run (overrides the scaffold's limit).")
    ] = None,
    max_cost: Annotated[
        float | None,
        typer.Option(min=0, help="Dollars per run, 0: no limit (overrides the scaffold's)."),
    ] = None,
    max_time: Annotated[
        float | None,
        typer.Option(min=1, help="Wall-clock seconds per run (overrides the scaffold's)."),
    ] = None,
    temperature: Annotated[
        float | None, typer.Option(min=0, help="Sampling temperature (overrides the scaffold's).")
    ] = None,
    seed: Annotated[
        int | None,
        typer.Option(
            help="Sampling seed (attempt k of a task uses seed + k + an offset from the task "
            "id); overrides the scaffold's."
        ),
    ] = None,
    repo: Annotated[
        Path | None,
        typer.Option(
            help="Instead of a dataset: work on this local git repository (copied into the "
            "sandbox with its uncommitted changes; never modified). Needs --problem or "
            "--problem-file; no tests run, the patch is the result."
        ),
    ] = None,
    problem: Annotated[
        str | None, typer.Option(help="With --repo: what the agent should do.")
    ] = None,
    problem_file: Annotated[
        Path | None, typer.Option(help="With --repo: a file holding the problem statement.")
    ] = None,
) -> None:
    """Run a scaffold + backend on tasks in a sandbox, and grade the results.

    Each task's trajectory, patch and graded result go under OUTPUT/RUN_ID/INSTANCE_ID/; running
    the same command again resumes where it stopped. A run folder records its configuration; a
    different one goes to its own folder, or, under a --run-id you named, is refused unless
    --rerun. With --repo and --problem, the agent works on your own repository instead."""
    from agentkit.cli.runner import RunSettings, run_tasks
    from agentkit.errors import UserFacingError
    from agentkit.runtime.spawned import reaping_children

    kind = _runtime_kind(runtime)
    where = _executor_kind(executor, ray_address)
    settings = RunSettings(
        dataset=dataset if dataset is not None or repo is not None else _bundled_dataset(),
        task_ids=task or [],
        pattern=pattern,
        slice=slice_,
        scaffold=scaffold,
        backend=backend,
        runtime=kind,
        output=output,
        run_id=run_id,
        rerun=rerun,
        workers=workers,
        attempts=attempts,
        executor=where,
        ray_address=ray_address,
        max_steps=max_steps,
        max_cost=max_cost,
        max_time_s=max_time,
        temperature=temperature,
        seed=seed,
        repo=repo,
        problem=problem,
        problem_file=problem_file,
    )
    try:
        results = asyncio.run(reaping_children(run_tasks(settings)))
    except KeyboardInterrupt:
        _fail("Interrupted. Finished tasks and steps are on disk; run the same command to resume.")
    except UserFacingError as exc:
        _fail(str(exc))
    if not results or not all(result.ok for result in results):
        raise typer.Exit(1)


@app.command("eval")
def eval_(
    predictions: Annotated[
        str,
        typer.Option(
            help="SWE-bench predictions (JSONL, JSON list, or JSON object by instance id), or "
            "'gold' for the tasks' reference patches."
        ),
    ],
    dataset: DatasetOption = None,
    task: TaskOption = None,
    pattern: FilterOption = None,
    slice_: SliceOption = None,
    runtime: RuntimeOption = "docker",
    output: OutputOption = Path("runs"),
    run_id: Annotated[
        str | None,
        typer.Option(
            help="Run name (default: eval__ + the predictions' model, plus a hash of the "
            "configuration when that folder holds another predictions file, dataset or runtime)."
        ),
    ] = None,
    rerun: RerunOption = False,
    workers: WorkersOption = 1,
    executor: ExecutorOption = "local",
    ray_address: RayAddressOption = None,
) -> None:
    """Grade a predictions file by running each task's tests; no agent runs.

    Reports have SWE-bench's format; running the same command again grades only what changed."""
    from agentkit.cli.evaluate import EvalSettings, evaluate
    from agentkit.errors import UserFacingError
    from agentkit.runtime.spawned import reaping_children

    kind = _runtime_kind(runtime)
    where = _executor_kind(executor, ray_address)
    settings = EvalSettings(
        dataset=dataset or _bundled_dataset(),
        predictions=predictions,
        task_ids=task or [],
        pattern=pattern,
        slice=slice_,
        runtime=kind,
        output=output,
        run_id=run_id,
        rerun=rerun,
        workers=workers,
        executor=where,
        ray_address=ray_address,
    )
    try:
        results = asyncio.run(reaping_children(evaluate(settings)))
    except KeyboardInterrupt:
        _fail("Interrupted. Finished grades are on disk; run the same command to resume.")
    except UserFacingError as exc:
        _fail(str(exc))
    if not all(result.ok for result in results):
        raise typer.Exit(1)


def _runtime_kind(runtime: str) -> Literal["docker", "local"]:
    if runtime not in ("docker", "local"):
        _fail(f"Unknown runtime {runtime!r}: use 'docker' or 'local'.")
    return "docker" if runtime == "docker" else "local"


def _executor_kind(executor: str, ray_address: str | None) -> Literal["local", "ray"]:
    if executor not in ("local", "ray"):
        _fail(f"Unknown executor {executor!r}: use 'local' or 'ray'.")
    if ray_address is not None and executor != "ray":
        _fail("--ray-address is for --executor ray.")
    return "ray" if executor == "ray" else "local"


@app.command("inspect")
def inspect_(
    run_dir: Annotated[
        Path,
        typer.Argument(
            help="A run folder (OUTPUT/RUN_ID), as written by `agentkit run` or `agentkit eval`."
        ),
    ],
    task: Annotated[
        str | None,
        typer.Option(
            "--task",
            "-t",
            help="Show this task step by step (instance id; 'ID #N' for one attempt).",
        ),
    ] = None,
    html: Annotated[
        Path | None, typer.Option(help="Write a self-contained HTML report to this file instead.")
    ] = None,
) -> None:
    """Show a run: its tasks and totals, one task step by step, or an HTML report."""
    from agentkit.cli.inspect_cmd import inspect_command

    raise typer.Exit(inspect_command(run_dir, task, html))


@app.command("images")
def images_(
    prune: Annotated[
        bool,
        typer.Option(
            "--prune", help="Remove agentkit's instance images (rebuilt when a run needs them)."
        ),
    ] = False,
    all_: Annotated[
        bool, typer.Option("--all", help="With --prune: remove the base image too.")
    ] = False,
) -> None:
    """List the Docker images agentkit built (instance images and the base image), with size
    and creation time; --prune removes them."""
    from agentkit.cli.images import images_command
    from agentkit.errors import UserFacingError

    if all_ and not prune:
        _fail("--all goes with --prune.")
    try:
        code = images_command(prune, all_)
    except UserFacingError as exc:
        _fail(str(exc))
    raise typer.Exit(code)


@app.command()
def examples(
    out_dir: Annotated[Path, typer.Argument(help="Where to build them.")] = DEFAULT_EXAMPLES_DIR,
) -> None:
    """Build the bundled example tasks and print the dataset's path.

    They are small real git repositories with real bugs and real tests, in SWE-bench format."""
    from agentkit.evals.examples import build_examples

    typer.echo(build_examples(out_dir))


@app.command()
def serve(
    model_dir: Annotated[Path, typer.Argument(help="A model directory (from_pretrained layout).")],
    port: Annotated[int | None, typer.Option(help="Port (default: a free one).")] = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    max_model_len: Annotated[int, typer.Option(help="Context length to serve.")] = 2048,
    python: Annotated[
        str | None, typer.Option(help="Interpreter that has vLLM (default: .venv-vllm's).")
    ] = None,
    log: Annotated[Path | None, typer.Option(help="Server log file.")] = None,
    served_model_name: Annotated[
        str | None,
        typer.Option(help="The model name clients send (default: the folder's name)."),
    ] = None,
) -> None:
    """Serve a local model with vLLM's OpenAI-compatible server until Ctrl-C.

    Point runs at it from another shell with the --backend line it prints."""
    from agentkit.backends.vllm_server import VLLMConfig, serve_in_foreground

    config = VLLMConfig(
        model_path=str(model_dir),
        served_model_name=served_model_name or model_dir.resolve().name,
        port=port,
        host=host,
        max_model_len=max_model_len,
        python=python,
        log_path=str(log) if log else None,
    )
    raise typer.Exit(serve_in_foreground(config))


# -- training data ------------------------------------------------------------------------------

RunDirsArgument = Annotated[
    list[Path], typer.Argument(help="Run folders (OUTPUT/RUN_ID) written by `agentkit run`.")
]
ModelOption = Annotated[
    Path, typer.Option(help="The model's from_pretrained folder (its tokenizer and chat template).")
]
KeepOption = Annotated[
    str,
    typer.Option(help="'resolved': only attempts whose patch resolved the task; 'graded': any."),
]
SelectOption = Annotated[
    str,
    typer.Option(
        "--select",
        help="Per task: 'best_of_k' (the kept attempt with fewest steps), 'all', or "
        "'dedupe_patch' (one per distinct patch).",
    ),
]
CompactOption = Annotated[
    str,
    typer.Option(
        help="Attempts that ended by a limit (steps, time, cost, context): 'drop', 'mask' "
        "(kept as context, nothing trained) or 'keep'."
    ),
]
MaskMalformedOption = Annotated[
    bool,
    typer.Option(help="Leave out of the loss the turns whose action was malformed."),
]
MaxStepsOption = Annotated[
    int | None, typer.Option(min=1, help="Leave out attempts with more steps than this.")
]
MaxTokensOption = Annotated[
    int | None, typer.Option(min=1, help="Leave out samples longer than this many tokens.")
]


def _data_config(
    keep: str,
    select: str,
    compact: str,
    mask_malformed: bool,
    max_steps: int | None,
    max_tokens: int | None,
) -> SFTDataConfig:
    from pydantic import ValidationError

    from agentkit.training.pipeline import SFTDataConfig

    try:
        return SFTDataConfig.model_validate(
            {
                "rft": {"keep": keep, "policy": select},
                "data": {
                    "compact": compact,
                    "mask_malformed": mask_malformed,
                    "max_steps": max_steps,
                    "max_tokens": max_tokens,
                },
            }
        )
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'][1:])}: {e['msg']}" for e in exc.errors()
        )
        _fail(f"bad option: {problems}")
        raise AssertionError from exc  # _fail exits


@app.command("export")
def export_(
    run_dirs: RunDirsArgument,
    model: ModelOption,
    output: Annotated[
        Path,
        typer.Option(help="Where: NAME.parquet, NAME.jsonl, or a folder (save_to_disk)."),
    ],
    format_: Annotated[
        str,
        typer.Option(
            "--format",
            help="'hf': token ids, loss masks and provenance as a Hugging Face dataset; 'trl': "
            "input_ids + assistant_masks for TRL's SFTTrainer; 'conversations': messages + "
            "tools (the trainer tokenizes; malformed turns are not masked).",
        ),
    ] = "hf",
    keep: KeepOption = "resolved",
    select: SelectOption = "best_of_k",
    compact: CompactOption = "drop",
    mask_malformed: MaskMalformedOption = True,
    max_steps: MaxStepsOption = None,
    max_tokens: MaxTokensOption = None,
) -> None:
    """Turn run folders into training data: pick attempts (RFT), mask malformed turns, write."""
    from agentkit.cli.train_cmd import export_command
    from agentkit.errors import UserFacingError

    if format_ not in ("hf", "trl", "conversations"):
        _fail(f"Unknown format {format_!r}: use 'hf', 'trl' or 'conversations'.")
    config = _data_config(keep, select, compact, mask_malformed, max_steps, max_tokens)
    try:
        path = export_command(run_dirs, model, output, format_, config)  # type: ignore[arg-type]
    except UserFacingError as exc:
        _fail(str(exc))
    typer.echo(path)


train_app = typer.Typer(
    help="Train a model on finished runs.", no_args_is_help=True, add_completion=False
)
app.add_typer(train_app, name="train")


@train_app.command("sft")
def train_sft_(
    run_dirs: RunDirsArgument,
    model: ModelOption,
    output: Annotated[Path, typer.Option(help="Checkpoints, metrics and final/ go here.")],
    keep: KeepOption = "resolved",
    select: SelectOption = "best_of_k",
    compact: CompactOption = "drop",
    mask_malformed: MaskMalformedOption = True,
    max_steps: MaxStepsOption = None,
    max_tokens: MaxTokensOption = None,
    config: Annotated[
        Path | None,
        typer.Option(
            help="A YAML/JSON file of trainer settings (SFTConfig fields); the options below "
            "override it."
        ),
    ] = None,
    learning_rate: Annotated[float | None, typer.Option(help="Peak learning rate.")] = None,
    epochs: Annotated[int | None, typer.Option(min=1, help="Passes over the data.")] = None,
    train_steps: Annotated[
        int | None, typer.Option(min=1, help="Exactly this many optimizer steps instead.")
    ] = None,
    lora_rank: Annotated[
        int | None, typer.Option(min=1, help="Train a LoRA adapter of this rank (else full).")
    ] = None,
    resume: Annotated[
        bool, typer.Option(help="Continue the run whose checkpoints are in OUTPUT.")
    ] = False,
) -> None:
    """Supervised fine-tuning on the kept attempts of run folders (RFT, masked-action SFT)."""
    from agentkit.cli.train_cmd import train_sft_command
    from agentkit.errors import UserFacingError

    data = _data_config(keep, select, compact, mask_malformed, max_steps, max_tokens)
    overrides = {
        "learning_rate": learning_rate,
        "epochs": epochs,
        "max_steps": train_steps,
        "lora": {"rank": lora_rank} if lora_rank else None,
    }
    try:
        final = train_sft_command(
            run_dirs,
            model,
            output,
            data,
            config_file=config,
            overrides={k: v for k, v in overrides.items() if v is not None},
            resume=resume,
        )
    except UserFacingError as exc:
        _fail(str(exc))
    except KeyboardInterrupt:
        _fail("Interrupted. Checkpoints are on disk; run the same command with --resume.")
    typer.echo(final)


@train_app.command("rl")
def train_rl_(
    config: Annotated[
        Path,
        typer.Option(
            exists=True,
            dir_okay=False,
            help="A YAML/JSON file of RL settings (RLRunConfig: model_path, output_dir, dataset "
            "or toy_tasks, scaffold, steps, group_size, ...).",
        ),
    ],
    steps: Annotated[
        int | None, typer.Option(min=1, help="RL steps (overrides the file's).")
    ] = None,
    output: Annotated[
        Path | None, typer.Option(help="Output folder (overrides the file's output_dir).")
    ] = None,
    resume: Annotated[
        bool, typer.Option(help="Continue the run whose checkpoints are in the output folder.")
    ] = False,
) -> None:
    """Reinforcement learning on a vLLM-served policy: grouped rollouts, one policy step and a
    verified weight sync per step. Prints the output folder (metrics.jsonl, reward.png)."""
    from agentkit.cli.train_cmd import train_rl_command
    from agentkit.errors import UserFacingError

    overrides: dict[str, object] = {}
    if steps is not None:
        overrides["steps"] = steps
    if output is not None:
        overrides["output_dir"] = str(output.resolve())
    try:
        folder = train_rl_command(config, overrides, resume)
    except UserFacingError as exc:
        _fail(str(exc))
    except KeyboardInterrupt:
        _fail("Interrupted. Checkpoints are on disk; run the same command with --resume.")
    typer.echo(folder)


def _bundled_dataset() -> Path:
    from agentkit.evals.examples import build_examples

    return build_examples(DEFAULT_EXAMPLES_DIR)


def _fail(message: str) -> None:
    _print_error(message)
    raise typer.Exit(2)


def _print_error(message: str) -> None:
    from rich.console import Console
    from rich.markup import escape

    Console(stderr=True).print(f"[bold red]error:[/] {escape(message)}", highlight=False)


def main() -> None:
    from agentkit.errors import missing_extra_message

    try:
        app()
    except ModuleNotFoundError as exc:
        message = missing_extra_message(exc)
        if message is None:
            raise
        _print_error(message)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
