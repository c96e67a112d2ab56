"""The statistics of a run with repeats: pass@k, per-repo resolve rates, spend distributions.

A run may hold k attempts per task; each attempt is one :class:`AttemptRecord`. Everything here
is a pure function of a list of records, so a report can be recomputed from a run folder at any
time and every number is testable on hand-made lists.

Rules, each applied where it is handled below:

* **Errors are not evidence.** An attempt whose ``error`` is set has no grade (the sandbox, the
  backend or the harness failed, not the model), so it is left out of the task's ``n`` entirely,
  never counted as a failure: counting it would make flaky infrastructure look like a weaker
  model, and a rerun retries it anyway. A task with no graded attempt at all is listed in
  ``ungraded_ids`` and left out of every rate. An attempt without ``error`` is graded, and it is
  correct only when ``resolved is True`` (``None`` without an error counts as unresolved, as in
  the run report).
* **pass@k** is the unbiased estimator of Chen et al. 2021 ("Evaluating Large Language Models
  Trained on Code"): per task ``1 - C(n-c, k) / C(n, k)``, with ``n`` graded attempts of which
  ``c`` are correct, averaged over tasks. It is defined only for ``k <= n``, so a task with fewer
  graded attempts than ``k`` is left out of that ``k`` and each value reports how many tasks it
  averages. ``pass_at_1`` is the mean over tasks of ``c / n``: the mean resolve rate.
* **Spend** (cost, steps, wall time, tokens) counts every attempt, graded or not: it is what the
  run cost, whatever the grade.
* **Percentiles** use the nearest-rank method: p90 is the smallest value with at least 90% of the
  values at or below it, always one of the observed values. The median is the usual one (the mean
  of the two middle values of an even-length list).
* Sums use ``math.fsum`` over sorted values, so the result does not depend on the order of the
  records, not even in the last bit.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence

from pydantic import BaseModel, ConfigDict, Field

NO_EXIT_STATUS = "(none)"
"""The ``exit_status_counts`` key of attempts without an exit status (in parentheses, so it can
never collide with a real status such as ``submitted``)."""


class AttemptRecord(BaseModel):
    """One attempt at one task, as a run with repeats stores it. ``error`` set means no grade."""

    model_config = ConfigDict(extra="forbid")

    instance_id: str
    attempt: int = Field(default=0, ge=0)
    """0-based index of this attempt among the task's attempts."""
    repo: str
    resolved: bool | None = None
    error: str | None = None
    exit_status: str | None = None
    steps: int = Field(default=0, ge=0)
    cost: float = Field(default=0.0, ge=0.0)
    wall_time_s: float = Field(default=0.0, ge=0.0)
    prompt_tokens: int = Field(default=0, ge=0)
    completion_tokens: int = Field(default=0, ge=0)

    @property
    def graded(self) -> bool:
        return self.error is None

    @property
    def correct(self) -> bool:
        return self.error is None and self.resolved is True


class Distribution(BaseModel):
    """Summary of one spent quantity over attempts. The statistics are ``None`` when empty."""

    model_config = ConfigDict(extra="forbid")

    count: int = 0
    total: float = 0.0
    mean: float | None = None
    median: float | None = None
    p90: float | None = None
    """Nearest-rank 90th percentile: an observed value."""
    max: float | None = None


class PassAtK(BaseModel):
    """pass@k averaged over the tasks with at least ``k`` graded attempts."""

    model_config = ConfigDict(extra="forbid")

    k: int
    value: float | None
    """``None`` when no task has ``k`` graded attempts."""
    tasks: int
    """How many tasks the value averages."""


class RepoRate(BaseModel):
    """pass@1 over one repository's graded tasks."""

    model_config = ConfigDict(extra="forbid")

    tasks: int
    """All of the repository's tasks, graded or not."""
    graded_tasks: int
    pass_at_1: float | None
    """``None`` when none of the repository's tasks was graded."""


class RunStatistics(BaseModel):
    """The statistics of a run with repeats; see the module docstring for the rules."""

    model_config = ConfigDict(extra="forbid")

    tasks: int = 0
    attempts: int = 0
    graded_attempts: int = 0
    pass_at_1: float | None = None
    """Mean over graded tasks of correct / graded attempts; ``None`` when nothing was graded."""
    pass_at_k: list[PassAtK] = Field(default_factory=list)
    """One entry for each k from 1 to the most attempts any task has."""
    resolve_rate_by_repo: dict[str, RepoRate] = Field(default_factory=dict)
    """By repository name, sorted."""
    ungraded_ids: list[str] = Field(default_factory=list)
    """Tasks without a single graded attempt, sorted."""
    exit_status_counts: dict[str, int] = Field(default_factory=dict)
    """Attempts by exit status, sorted by status; ``NO_EXIT_STATUS`` for ``None``."""
    cost: Distribution = Field(default_factory=Distribution)
    steps: Distribution = Field(default_factory=Distribution)
    wall_time_s: Distribution = Field(default_factory=Distribution)
    prompt_tokens: Distribution = Field(default_factory=Distribution)
    completion_tokens: Distribution = Field(default_factory=Distribution)


def pass_at_k(n: int, c: int, k: int) -> float:
    """The unbiased pass@k of one task with ``n`` graded attempts, ``c`` of them correct.

    ``1 - C(n-c, k) / C(n, k)``, computed as ``1 - prod_{i=n-c+1..n} (1 - k/i)`` (the form of the
    Codex paper) so that large ``n`` never builds huge binomials or loses precision.
    """
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"pass@k needs 0 <= c <= n and 1 <= k <= n, got n={n}, c={c}, k={k}")
    if n - c < k:
        return 1.0  # every k-subset holds a correct attempt
    product = 1.0
    for i in range(n - c + 1, n + 1):
        product *= 1.0 - k / i
    return 1.0 - product


def distribution(values: Sequence[float]) -> Distribution:
    """Count, total, mean, median, nearest-rank p90 and max of ``values`` (any order)."""
    if not values:
        return Distribution()
    ordered = sorted(float(v) for v in values)
    count = len(ordered)
    total = math.fsum(ordered)
    middle = count // 2
    median = ordered[middle] if count % 2 else (ordered[middle - 1] + ordered[middle]) / 2
    return Distribution(
        count=count,
        total=total,
        mean=total / count,
        median=median,
        p90=nearest_rank(ordered, 0.9),
        max=ordered[-1],
    )


def nearest_rank(ordered: Sequence[float], q: float) -> float:
    """The nearest-rank ``q``-quantile of sorted, non-empty ``ordered``: its ``ceil(q*n)``-th value.

    Chosen over interpolation because it is always an observed value (a real attempt's cost).
    """
    if not ordered or not 0.0 < q <= 1.0:
        raise ValueError("nearest_rank needs a non-empty list and 0 < q <= 1")
    # round() first so that 0.9 * 10 == 9.000000000000002 does not become rank 10.
    rank = math.ceil(round(q * len(ordered), 9))
    return ordered[max(rank, 1) - 1]


def _mean(values: Iterable[float]) -> float | None:
    ordered = sorted(values)
    return math.fsum(ordered) / len(ordered) if ordered else None


def run_statistics(records: Iterable[AttemptRecord]) -> RunStatistics:
    """The statistics of a run from its per-attempt records (any order).

    Raises ``ValueError`` on two records for the same attempt of a task, or on a task whose
    attempts name different repositories: both mean the input was assembled wrongly, and any
    number computed from it would be silently wrong.
    """
    rows = list(records)  # read once: it may be a generator
    by_task: dict[str, list[AttemptRecord]] = {}
    seen: set[tuple[str, int]] = set()
    for record in rows:
        key = (record.instance_id, record.attempt)
        if key in seen:
            raise ValueError(f"duplicate attempt {record.attempt} of {record.instance_id}")
        seen.add(key)
        by_task.setdefault(record.instance_id, []).append(record)

    repo_of: dict[str, str] = {}
    for instance_id, attempts in by_task.items():
        repos = {a.repo for a in attempts}
        if len(repos) > 1:
            raise ValueError(f"{instance_id} has attempts in several repos: {sorted(repos)}")
        repo_of[instance_id] = repos.pop()

    # (n, c) per task: graded attempts and correct ones.
    counts = {
        instance_id: (sum(a.graded for a in attempts), sum(a.correct for a in attempts))
        for instance_id, attempts in by_task.items()
    }
    graded = {i: nc for i, nc in counts.items() if nc[0] > 0}
    max_attempts = max((len(a) for a in by_task.values()), default=0)

    pass_at = []
    for k in range(1, max_attempts + 1):
        used = [pass_at_k(n, c, k) for n, c in graded.values() if n >= k]
        pass_at.append(PassAtK(k=k, value=_mean(used), tasks=len(used)))

    by_repo: dict[str, RepoRate] = {}
    for repo in sorted(set(repo_of.values())):
        ids = [i for i, r in repo_of.items() if r == repo]
        rates = [graded[i][1] / graded[i][0] for i in ids if i in graded]
        by_repo[repo] = RepoRate(tasks=len(ids), graded_tasks=len(rates), pass_at_1=_mean(rates))

    statuses: dict[str, int] = {}
    for record in rows:
        status = record.exit_status if record.exit_status is not None else NO_EXIT_STATUS
        statuses[status] = statuses.get(status, 0) + 1

    def spent(field: Callable[[AttemptRecord], float]) -> Distribution:
        return distribution([field(r) for r in rows])

    return RunStatistics(
        tasks=len(by_task),
        attempts=len(rows),
        graded_attempts=sum(r.graded for r in rows),
        pass_at_1=_mean(c / n for n, c in graded.values()),
        pass_at_k=pass_at,
        resolve_rate_by_repo=by_repo,
        ungraded_ids=sorted(set(by_task) - set(graded)),
        exit_status_counts=dict(sorted(statuses.items())),
        cost=spent(lambda r: r.cost),
        steps=spent(lambda r: r.steps),
        wall_time_s=spent(lambda r: r.wall_time_s),
        prompt_tokens=spent(lambda r: r.prompt_tokens),
        completion_tokens=spent(lambda r: r.completion_tokens),
    )


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _number(value: float | None, decimals: int) -> str:
    return "-" if value is None else f"{value:,.{decimals}f}"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """Plain-text columns: the first left-aligned, the rest right-aligned, two spaces apart."""
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = []
    for row in [header, *rows]:
        cells = [row[0].ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)
        ]
        lines.append("  ".join(cells).rstrip())
    return lines


def render_statistics(stats: RunStatistics) -> str:
    """A compact plain-text report for the CLI: deterministic, no markup, ends with a newline."""
    summary = (
        f"tasks {stats.tasks}  attempts {stats.attempts}  graded attempts "
        f"{stats.graded_attempts}  ungraded tasks {len(stats.ungraded_ids)}"
    )
    if stats.attempts == 0:
        return summary + "\n"  # every table would be empty
    lines = [summary, ""]
    lines += _table(
        ["metric", "value", "tasks"],
        [[f"pass@{p.k}", _rate(p.value), str(p.tasks)] for p in stats.pass_at_k],
    )
    lines.append("")
    lines += _table(
        ["repo", "tasks", "graded", "pass@1"],
        [
            [repo, str(r.tasks), str(r.graded_tasks), _rate(r.pass_at_1)]
            for repo, r in stats.resolve_rate_by_repo.items()
        ],
    )
    lines.append("")
    # (name, distribution, decimals of total/p90/max, decimals of mean/median): counts are whole
    # numbers, their means are not.
    spend = [
        ("cost ($)", stats.cost, 4, 4),
        ("steps", stats.steps, 0, 1),
        ("wall time (s)", stats.wall_time_s, 1, 1),
        ("prompt tokens", stats.prompt_tokens, 0, 1),
        ("completion tokens", stats.completion_tokens, 0, 1),
    ]
    lines += _table(
        ["spent per attempt", "total", "mean", "median", "p90", "max"],
        [
            [
                name,
                _number(s.total, whole),
                _number(s.mean, frac),
                _number(s.median, frac),
                _number(s.p90, whole),
                _number(s.max, whole),
            ]
            for name, s, whole, frac in spend
        ],
    )
    lines.append("")
    lines += _table(
        ["exit status", "attempts"],
        [[status, str(n)] for status, n in stats.exit_status_counts.items()],
    )
    if stats.ungraded_ids:
        lines += ["", "ungraded: " + ", ".join(stats.ungraded_ids)]
    return "\n".join(lines) + "\n"
