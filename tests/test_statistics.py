"""Statistics of a run with repeats: pass@k by hand and against binomials, the error rule,
per-repo rates, spend distributions, order invariance, empty input, the rendered table."""

from __future__ import annotations

import math
import random
from fractions import Fraction

import pytest
from pydantic import ValidationError

from agentkit.evals.statistics import (
    NO_EXIT_STATUS,
    AttemptRecord,
    Distribution,
    PassAtK,
    RepoRate,
    RunStatistics,
    distribution,
    nearest_rank,
    pass_at_k,
    render_statistics,
    run_statistics,
)


def attempt(
    instance_id: str,
    index: int,
    *,
    resolved: bool | None = None,
    error: str | None = None,
    repo: str | None = None,
    exit_status: str | None = None,
    steps: int = 0,
    cost: float = 0.0,
    wall_time_s: float = 0.0,
    prompt_tokens: int = 0,
    completion_tokens: int = 0,
) -> AttemptRecord:
    return AttemptRecord(
        instance_id=instance_id,
        attempt=index,
        repo=repo if repo is not None else instance_id.split("-")[0],
        resolved=resolved,
        error=error,
        exit_status=exit_status,
        steps=steps,
        cost=cost,
        wall_time_s=wall_time_s,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
    )


def task(instance_id: str, outcomes: str) -> list[AttemptRecord]:
    """Attempts from a string: ``y`` resolved, ``n`` unresolved, ``e`` error (no grade)."""
    return [
        attempt(
            instance_id,
            i,
            resolved={"y": True, "n": False, "e": None}[o],
            error="infrastructure failed" if o == "e" else None,
        )
        for i, o in enumerate(outcomes)
    ]


# A run of 3 tasks in 2 repos, 2 attempts each at most (hand-computed values in the tests).
RUN = [
    attempt(
        "a__a-1", 0, repo="a/a", resolved=True, exit_status="submitted",
        steps=10, cost=0.5, wall_time_s=30, prompt_tokens=1000, completion_tokens=100,
    ),
    attempt(
        "a__a-1", 1, repo="a/a", resolved=False, exit_status="step_limit",
        steps=50, cost=2.0, wall_time_s=120, prompt_tokens=9000, completion_tokens=900,
    ),
    attempt(
        "a__a-2", 0, repo="a/a", resolved=True, exit_status="submitted",
        steps=8, cost=0.25, wall_time_s=20, prompt_tokens=800, completion_tokens=80,
    ),
    attempt("a__a-2", 1, repo="a/a", error="docker daemon died", wall_time_s=5),
    attempt(
        "b__b-1", 0, repo="b/b", error="backend 500", exit_status="backend_error",
        steps=2, cost=0.25, wall_time_s=10, prompt_tokens=200,
    ),
]  # fmt: skip


# --- pass@k of one task ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n", "c", "k", "expected"),
    [
        (5, 2, 1, 0.4),  # c / n
        (5, 2, 2, 0.7),  # 1 - C(3,2)/C(5,2) = 1 - 3/10
        (5, 2, 3, 0.9),  # 1 - C(3,3)/C(5,3) = 1 - 1/10
        (5, 2, 4, 1.0),  # n - c < k: every 4-subset holds a correct attempt
        (5, 2, 5, 1.0),
        (5, 0, 1, 0.0),
        (5, 0, 5, 0.0),
        (5, 5, 1, 1.0),
        (1, 1, 1, 1.0),
        (1, 0, 1, 0.0),
        (4, 1, 2, 0.5),  # 1 - C(3,2)/C(4,2) = 1 - 3/6
        (10, 3, 5, 1 - 21 / 252),  # 1 - C(7,5)/C(10,5)
    ],
)
def test_pass_at_k_by_hand(n: int, c: int, k: int, expected: float) -> None:
    assert pass_at_k(n, c, k) == pytest.approx(expected, abs=1e-12)


def test_pass_at_k_matches_the_binomial_formula_for_every_small_case() -> None:
    for n in range(1, 21):
        for c in range(n + 1):
            for k in range(1, n + 1):
                naive = 1 - math.comb(n - c, k) / math.comb(n, k)
                assert pass_at_k(n, c, k) == pytest.approx(naive, abs=1e-12), (n, c, k)


def test_pass_at_k_is_stable_where_binomials_overflow_floats() -> None:
    n, c, k = 2000, 3, 100  # C(2000, 100) is far beyond a float
    exact = 1 - Fraction(math.comb(n - c, k), math.comb(n, k))
    assert pass_at_k(n, c, k) == pytest.approx(float(exact), rel=1e-12)


@pytest.mark.parametrize(("n", "c", "k"), [(3, 4, 1), (3, -1, 1), (3, 1, 0), (3, 1, 4), (0, 0, 1)])
def test_pass_at_k_rejects_undefined_cases(n: int, c: int, k: int) -> None:
    with pytest.raises(ValueError, match="pass@k needs"):
        pass_at_k(n, c, k)


# --- distributions ---------------------------------------------------------------------------


def test_distribution_of_an_even_length_list() -> None:
    d = distribution([4, 1, 3, 2])
    # median: mean of the two middle values; p90: rank ceil(0.9 * 4) = 4 → the 4th smallest.
    assert d == Distribution(count=4, total=10, mean=2.5, median=2.5, p90=4, max=4)


def test_distribution_of_an_odd_length_list() -> None:
    assert distribution([5.0, 1.0, 3.0]) == Distribution(
        count=3, total=9.0, mean=3.0, median=3.0, p90=5.0, max=5.0
    )


def test_p90_is_nearest_rank() -> None:
    assert distribution(list(range(1, 11))).p90 == 9  # rank ceil(9.0) = 9, not 10
    assert distribution(list(range(1, 21))).p90 == 18
    assert distribution(list(range(1, 12))).p90 == 10  # rank ceil(9.9) = 10
    assert distribution([7]).p90 == 7
    assert nearest_rank([1.0, 2.0, 3.0, 4.0], 0.5) == 2.0
    assert nearest_rank([1.0, 2.0, 3.0, 4.0], 1.0) == 4.0
    with pytest.raises(ValueError):
        nearest_rank([], 0.9)


def test_distribution_of_nothing_is_zero_and_none() -> None:
    assert distribution([]) == Distribution(
        count=0, total=0.0, mean=None, median=None, p90=None, max=None
    )


# --- the statistics of a run ------------------------------------------------------------------


def test_run_statistics_by_hand() -> None:
    stats = run_statistics(RUN)
    assert (stats.tasks, stats.attempts, stats.graded_attempts) == (3, 5, 3)
    # a__a-1: n=2, c=1; a__a-2: n=1, c=1 (its error is not evidence); b__b-1: ungraded.
    assert stats.pass_at_1 == pytest.approx(0.75)
    assert stats.pass_at_k == [
        PassAtK(k=1, value=0.75, tasks=2),
        PassAtK(k=2, value=1.0, tasks=1),  # only a__a-1 has 2 graded attempts
    ]
    assert stats.ungraded_ids == ["b__b-1"]
    assert stats.resolve_rate_by_repo == {
        "a/a": RepoRate(tasks=2, graded_tasks=2, pass_at_1=0.75),
        "b/b": RepoRate(tasks=1, graded_tasks=0, pass_at_1=None),
    }
    assert stats.exit_status_counts == {
        NO_EXIT_STATUS: 1,
        "backend_error": 1,
        "step_limit": 1,
        "submitted": 2,
    }
    # Spend counts every attempt, errors included.
    assert stats.cost == Distribution(count=5, total=3.0, mean=0.6, median=0.25, p90=2.0, max=2.0)
    assert stats.steps == Distribution(count=5, total=70, mean=14, median=8, p90=50, max=50)
    assert stats.wall_time_s == Distribution(
        count=5, total=185, mean=37, median=20, p90=120, max=120
    )
    assert stats.prompt_tokens.total == 11000
    assert stats.completion_tokens == Distribution(
        count=5, total=1080, mean=216, median=80, p90=900, max=900
    )


def test_pass_at_1_is_the_mean_resolve_rate_and_pass_at_k_averages_tasks() -> None:
    stats = run_statistics(task("x-1", "yyynn") + task("x-2", "nnnnn") + task("x-3", "ynnnn"))
    assert stats.pass_at_1 == pytest.approx((3 / 5 + 0 + 1 / 5) / 3)
    values = {p.k: p.value for p in stats.pass_at_k}
    for k in range(1, 6):
        expected = (pass_at_k(5, 3, k) + 0.0 + pass_at_k(5, 1, k)) / 3
        assert values[k] == pytest.approx(expected)
    assert values[5] == pytest.approx(2 / 3)
    assert [p.tasks for p in stats.pass_at_k] == [3, 3, 3, 3, 3]


def test_tasks_with_fewer_attempts_than_k_are_left_out_of_that_k() -> None:
    stats = run_statistics(task("x-1", "nny") + task("x-2", "y"))
    assert [(p.k, p.tasks) for p in stats.pass_at_k] == [(1, 2), (2, 1), (3, 1)]
    assert [p.value for p in stats.pass_at_k] == pytest.approx([(1 / 3 + 1) / 2, 2 / 3, 1.0])


def test_errors_are_left_out_of_n_and_tasks_without_a_grade_are_listed() -> None:
    stats = run_statistics(task("x-1", "ye") + task("x-2", "nee") + task("x-3", "eee"))
    # x-1: n=1, c=1 → 1.0 (not 0.5); x-2: n=1, c=0 → 0.0; x-3: no grade → left out.
    assert stats.pass_at_1 == pytest.approx(0.5)
    assert stats.ungraded_ids == ["x-3"]
    assert stats.graded_attempts == 2
    assert stats.pass_at_k[1] == PassAtK(k=2, value=None, tasks=0)  # nobody has 2 grades
    assert stats.pass_at_k[2] == PassAtK(k=3, value=None, tasks=0)
    assert stats.resolve_rate_by_repo == {"x": RepoRate(tasks=3, graded_tasks=2, pass_at_1=0.5)}


def test_an_ungraded_resolved_flag_does_not_count() -> None:
    # resolved=True with an error is not a grade; resolved=None without one is unresolved.
    stats = run_statistics(
        [
            attempt("x-1", 0, resolved=True, error="grader crashed"),
            attempt("x-1", 1, resolved=None),
        ]
    )
    assert stats.pass_at_1 == 0.0
    assert stats.ungraded_ids == []


def test_per_repo_rates() -> None:
    records = (
        task("django-1", "yn")
        + task("django-2", "yy")
        + task("sympy-1", "nn")
        + task("astropy-1", "e")
    )
    stats = run_statistics(records)
    assert list(stats.resolve_rate_by_repo) == ["astropy", "django", "sympy"]  # sorted
    assert stats.resolve_rate_by_repo["django"] == RepoRate(tasks=2, graded_tasks=2, pass_at_1=0.75)
    assert stats.resolve_rate_by_repo["sympy"] == RepoRate(tasks=1, graded_tasks=1, pass_at_1=0.0)
    assert stats.resolve_rate_by_repo["astropy"] == RepoRate(
        tasks=1, graded_tasks=0, pass_at_1=None
    )
    assert stats.pass_at_1 == pytest.approx((0.5 + 1 + 0) / 3)


def test_the_order_of_the_records_does_not_matter() -> None:
    rng = random.Random(1234)
    records = [
        attempt(
            f"r{t % 3}-{t}",
            i,
            resolved=rng.random() < 0.4,
            error="boom" if rng.random() < 0.15 else None,
            exit_status=rng.choice(["submitted", "step_limit", None]),
            steps=rng.randint(0, 80),
            cost=rng.choice([0.1, 0.2, 0.3, 0.7, 1e-9, 123.456]),  # sums that depend on order
            wall_time_s=rng.random() * 100,
            prompt_tokens=rng.randint(0, 50_000),
            completion_tokens=rng.randint(0, 5_000),
        )
        for t in range(12)
        for i in range(rng.randint(1, 4))
    ]
    expected = run_statistics(records)
    for _ in range(20):
        rng.shuffle(records)
        assert run_statistics(records) == expected  # exactly, to the last bit
    assert render_statistics(run_statistics(reversed(records))) == render_statistics(expected)


def test_empty_input() -> None:
    stats = run_statistics([])
    assert stats == RunStatistics()
    assert (stats.tasks, stats.attempts, stats.graded_attempts) == (0, 0, 0)
    assert stats.pass_at_1 is None
    assert stats.pass_at_k == []
    assert stats.cost == Distribution()
    assert render_statistics(stats) == "tasks 0  attempts 0  graded attempts 0  ungraded tasks 0\n"


def test_inconsistent_input_is_refused() -> None:
    with pytest.raises(ValueError, match="duplicate attempt 0 of x-1"):
        run_statistics(task("x-1", "y") + task("x-1", "n"))
    with pytest.raises(ValueError, match="several repos"):
        run_statistics([attempt("x-1", 0, repo="a/a"), attempt("x-1", 1, repo="b/b")])


def test_attempt_record_has_exactly_the_stored_fields() -> None:
    fields = {
        "instance_id": "x-1",
        "attempt": 2,
        "repo": "o/x",
        "resolved": None,
        "error": "backend 500",
        "exit_status": "backend_error",
        "steps": 3,
        "cost": 0.01,
        "wall_time_s": 4.5,
        "prompt_tokens": 100,
        "completion_tokens": 10,
    }
    assert AttemptRecord.model_validate(fields).model_dump() == fields
    with pytest.raises(ValidationError):
        AttemptRecord.model_validate({**fields, "resumed": True})
    with pytest.raises(ValidationError):
        AttemptRecord.model_validate({**fields, "attempt": -1})


# --- the rendered table -----------------------------------------------------------------------


def test_render_statistics_exactly() -> None:
    assert render_statistics(run_statistics(RUN)) == (
        "tasks 3  attempts 5  graded attempts 3  ungraded tasks 1\n"
        "\n"
        "metric  value  tasks\n"
        "pass@1  0.750      2\n"
        "pass@2  1.000      1\n"
        "\n"
        "repo  tasks  graded  pass@1\n"
        "a/a       2       2   0.750\n"
        "b/b       1       0       -\n"
        "\n"
        "spent per attempt   total     mean  median     p90     max\n"
        "cost ($)           3.0000   0.6000  0.2500  2.0000  2.0000\n"
        "steps                  70     14.0     8.0      50      50\n"
        "wall time (s)       185.0     37.0    20.0   120.0   120.0\n"
        "prompt tokens      11,000  2,200.0   800.0   9,000   9,000\n"
        "completion tokens   1,080    216.0    80.0     900     900\n"
        "\n"
        "exit status    attempts\n"
        "(none)                1\n"
        "backend_error         1\n"
        "step_limit            1\n"
        "submitted             2\n"
        "\n"
        "ungraded: b__b-1\n"
    )
