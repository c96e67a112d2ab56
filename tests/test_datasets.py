"""Datasets in every shape a publisher ships them (JSON, a folder of JSON, parquet, a Hugging Face
dataset saved to disk), and narrowing them to the tasks a run asked for.

Parquet and saved datasets are built here with the real libraries; without them those tests are
skipped, naming the package to install. Reading without the library is tested either way."""

from __future__ import annotations

import datetime
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from agentkit.evals.datasets import load_dataset, select_tasks
from agentkit.tasks import Task, TaskLoadError


def record(instance_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "instance_id": instance_id,
        "repo": "o/r",
        "base_commit": "abc",
        "patch": "p",
        "test_patch": "tp",
        "problem_statement": "bug",
        # As on the hub: the test lists are JSON strings.
        "FAIL_TO_PASS": json.dumps(["t.py::a"]),
        "PASS_TO_PASS": "[]",
        **extra,
    }


RECORDS = [record("o__r-1", extra_field="kept"), record("o__r-2", extra_field="also")]


def write_jsonl(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def ids(tasks: list[Task]) -> list[str]:
    return [task.instance_id for task in tasks]


def pyarrow_parquet() -> Any:
    pytest.importorskip("pyarrow", reason="needs the 'pyarrow' package (pip install pyarrow)")
    import pyarrow.parquet

    return pyarrow.parquet


def hf_datasets() -> Any:
    return pytest.importorskip(
        "datasets", reason="needs the 'datasets' package (pip install datasets)"
    )


def missing(monkeypatch: pytest.MonkeyPatch, *modules: str) -> None:
    """Make ``import module`` fail, as on a machine without the package."""
    for module in modules:
        monkeypatch.setitem(sys.modules, module, None)


# --- JSON files and folders ----------------------------------------------------------------------


def test_a_json_file_loads_as_before(tmp_path):
    tasks = load_dataset(write_jsonl(tmp_path / "d.jsonl", RECORDS))
    assert ids(tasks) == ["o__r-1", "o__r-2"]
    assert tasks[0].FAIL_TO_PASS == ["t.py::a"]


def test_a_folder_loads_its_json_files_in_name_order(tmp_path):
    write_jsonl(tmp_path / "b.jsonl", [record("b-1")])
    keyed = {k: v for k, v in record("a-1").items() if k != "instance_id"}
    (tmp_path / "a.json").write_text(json.dumps({"a-1": keyed}))  # a JSON object keyed by id
    (tmp_path / "c.JSON").write_text(json.dumps([record("c-1"), record("c-2")]))
    (tmp_path / "notes.txt").write_text("not a dataset")
    (tmp_path / ".editor-backup.json").write_text("{broken")
    (tmp_path / "sub").mkdir()
    write_jsonl(tmp_path / "sub" / "z.jsonl", [record("nested")])
    assert ids(load_dataset(tmp_path)) == ["a-1", "b-1", "c-1", "c-2"]


def test_an_id_in_two_files_of_a_folder_names_both_files(tmp_path):
    write_jsonl(tmp_path / "one.jsonl", [record("x-1"), record("dup")])
    write_jsonl(tmp_path / "two.jsonl", [record("dup")])
    with pytest.raises(TaskLoadError, match=r"'dup' is in both one.jsonl and two.jsonl"):
        load_dataset(tmp_path)


def test_a_bad_file_in_a_folder_is_named(tmp_path):
    write_jsonl(tmp_path / "good.jsonl", [record("x-1")])
    (tmp_path / "bad.jsonl").write_text("{not json\n")
    with pytest.raises(TaskLoadError, match=r"bad.jsonl:1: not valid JSON"):
        load_dataset(tmp_path)


def test_a_folder_without_json_holds_no_task_instances(tmp_path):
    with pytest.raises(TaskLoadError, match=r"holds no task instances: it has no \*.json"):
        load_dataset(tmp_path)
    (tmp_path / "test-00000-of-00001.parquet").write_bytes(b"")
    with pytest.raises(TaskLoadError, match=r"parquet files: name one of them"):
        load_dataset(tmp_path)


def test_a_missing_path_is_a_clear_error(tmp_path):
    with pytest.raises(TaskLoadError, match="cannot read dataset"):
        load_dataset(tmp_path / "nope.jsonl")
    with pytest.raises(TaskLoadError, match="cannot read dataset"):
        load_dataset(tmp_path / "nope:test")


def test_a_split_on_a_file_without_splits_is_refused(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", RECORDS)
    with pytest.raises(TaskLoadError, match=r"has no splits .* drop the split 'dev'"):
        load_dataset(f"{path}:dev")
    with pytest.raises(TaskLoadError, match=r"has no splits"):
        load_dataset(path, split="dev")


def test_a_file_whose_name_holds_a_colon_still_loads(tmp_path):
    path = write_jsonl(tmp_path / "d:v2.jsonl", RECORDS)
    assert ids(load_dataset(path)) == ["o__r-1", "o__r-2"]


# --- parquet -------------------------------------------------------------------------------------


def write_parquet(path: Path, records: list[dict[str, Any]]) -> Path:
    parquet = pyarrow_parquet()
    import pyarrow

    parquet.write_table(pyarrow.Table.from_pylist(records), path)
    return path


def test_a_parquet_file_loads_like_the_hub_serves_it(tmp_path):
    stamp = datetime.datetime(2023, 5, 1, 12, 30)
    rows = [
        record("o__r-1", created_at=stamp, extra_field="kept"),
        {**record("o__r-2", created_at=stamp), "FAIL_TO_PASS": '["t.py::b", "t.py::c"]'},
    ]
    tasks = load_dataset(write_parquet(tmp_path / "test-00000-of-00001.parquet", rows))
    assert ids(tasks) == ["o__r-1", "o__r-2"]
    assert tasks[1].FAIL_TO_PASS == ["t.py::b", "t.py::c"]
    assert tasks[0].PASS_TO_PASS == []
    assert tasks[0].created_at == "2023-05-01T12:30:00"
    assert tasks[0].model_extra == {"extra_field": "kept"}


def test_parquet_problems_are_worded_like_json_ones(tmp_path):
    bad = write_parquet(tmp_path / "bad.parquet", [{"repo": "o/r"}])
    with pytest.raises(TaskLoadError, match=r"bad.parquet: instance 1 is not a valid task: .*"):
        load_dataset(bad)
    dup = write_parquet(tmp_path / "dup.parquet", [record("x"), record("x")])
    with pytest.raises(TaskLoadError, match=r"dup.parquet: duplicate instance ids: x"):
        load_dataset(dup)
    import pyarrow

    empty = tmp_path / "empty.parquet"
    pyarrow_parquet().write_table(
        pyarrow.table({"instance_id": pyarrow.array([], "string")}), empty
    )
    with pytest.raises(TaskLoadError, match=r"empty.parquet holds no task instances"):
        load_dataset(empty)
    corrupt = tmp_path / "corrupt.parquet"
    corrupt.write_bytes(b"not parquet at all")
    with pytest.raises(TaskLoadError, match=r"cannot read parquet dataset .*corrupt.parquet"):
        load_dataset(corrupt)


def test_parquet_without_pyarrow_says_what_to_install(tmp_path, monkeypatch):
    path = tmp_path / "d.parquet"
    path.write_bytes(b"PAR1")
    missing(monkeypatch, "pyarrow", "pyarrow.parquet")
    with pytest.raises(TaskLoadError) as caught:
        load_dataset(path)
    assert str(caught.value) == (
        f"{path} is a parquet file; reading it needs the 'pyarrow' package: pip install pyarrow"
    )


# --- Hugging Face datasets saved to disk ---------------------------------------------------------


def save_dataset(path: Path, records: list[dict[str, Any]]) -> Path:
    datasets = hf_datasets()
    datasets.Dataset.from_list(records).save_to_disk(str(path))
    return path


def save_dataset_dict(path: Path, splits: dict[str, list[dict[str, Any]]]) -> Path:
    datasets = hf_datasets()
    datasets.DatasetDict(
        {name: datasets.Dataset.from_list(rows) for name, rows in splits.items()}
    ).save_to_disk(str(path))
    return path


def test_a_saved_dataset_loads(tmp_path):
    path = save_dataset(tmp_path / "swe", RECORDS)
    assert (path / "state.json").is_file() and (path / "dataset_info.json").is_file()
    tasks = load_dataset(path)
    assert ids(tasks) == ["o__r-1", "o__r-2"]
    assert tasks[0].FAIL_TO_PASS == ["t.py::a"]
    assert tasks[1].model_extra == {"extra_field": "also"}
    with pytest.raises(TaskLoadError, match=r"has no splits"):
        load_dataset(path, split="test")


@pytest.fixture
def saved_dict(tmp_path) -> Path:
    return save_dataset_dict(
        tmp_path / "swe-dict",
        {"dev": [record("dev-1"), record("dev-2")], "test": [record("test-1")]},
    )


def test_a_saved_dataset_dict_defaults_to_its_test_split(saved_dict):
    assert ids(load_dataset(saved_dict)) == ["test-1"]


def test_a_split_is_chosen_by_suffix_or_argument(saved_dict):
    assert ids(load_dataset(f"{saved_dict}:dev")) == ["dev-1", "dev-2"]
    assert ids(load_dataset(saved_dict, split="dev")) == ["dev-1", "dev-2"]
    assert ids(load_dataset(f"{saved_dict}:dev", split="dev")) == ["dev-1", "dev-2"]
    with pytest.raises(TaskLoadError, match=r"two splits given, 'dev' in the path and 'test'"):
        load_dataset(f"{saved_dict}:dev", split="test")


def test_an_unknown_split_lists_the_splits(saved_dict):
    with pytest.raises(TaskLoadError) as caught:
        load_dataset(f"{saved_dict}:train")
    assert str(caught.value) == (
        f"{saved_dict} has no split 'train'; choose one of: dev, test "
        f"(as {saved_dict}:SPLIT or load_dataset(..., split=))."
    )


def test_a_dataset_dict_without_a_test_split_needs_one_named(tmp_path):
    path = save_dataset_dict(tmp_path / "d", {"train": [record("a")], "dev": [record("b")]})
    with pytest.raises(TaskLoadError, match=r"has no 'test' split; choose one of: dev, train"):
        load_dataset(path)
    assert ids(load_dataset(path, split="train")) == ["a"]


def test_saved_dataset_problems_name_the_split(tmp_path):
    path = save_dataset_dict(tmp_path / "d", {"test": [{"repo": "o/r"}]})
    with pytest.raises(TaskLoadError, match=r"d:test: instance 1 is not a valid task"):
        load_dataset(path)


def test_a_damaged_saved_dataset_is_one_line(tmp_path):
    path = save_dataset(tmp_path / "swe", RECORDS)
    (path / "state.json").write_text("{broken")
    with pytest.raises(TaskLoadError, match=r"cannot read saved dataset"):
        load_dataset(path)


@pytest.mark.parametrize("marker", ["dataset_dict.json", "state.json+dataset_info.json"])
def test_a_saved_dataset_without_the_library_says_what_to_install(tmp_path, monkeypatch, marker):
    for name in marker.split("+"):
        (tmp_path / name).write_text("{}")
    missing(monkeypatch, "datasets")
    with pytest.raises(TaskLoadError) as caught:
        load_dataset(tmp_path)
    assert str(caught.value) == (
        f"{tmp_path} is a Hugging Face dataset saved with save_to_disk; reading it needs the "
        "'datasets' package: pip install datasets"
    )


# --- the log-parser check ------------------------------------------------------------------------


def test_unknown_log_parsers_are_refused_in_every_shape(tmp_path):
    rows = [record("ok", log_parser="pytest"), record("bad", log_parser="pytset")]
    folder = tmp_path / "folder"
    folder.mkdir()
    write_jsonl(folder / "a.jsonl", rows)
    sources: list[Path] = [folder]
    if _installed("pyarrow"):
        sources.append(write_parquet(tmp_path / "d.parquet", rows))
    if _installed("datasets"):
        sources.append(save_dataset(tmp_path / "saved", rows))
    for source in sources:
        with pytest.raises(TaskLoadError, match=r"unknown log_parser 'pytset' \(instances: bad\)"):
            load_dataset(source)


def _installed(module: str) -> bool:
    try:
        __import__(module)
    except ImportError:
        return False
    return True


# --- selecting -----------------------------------------------------------------------------------

TASKS = [Task(instance_id=f"django__django-{n}") for n in range(1, 6)] + [
    Task(instance_id="sympy__sympy-1"),
    Task(instance_id="sympy__sympy-2"),
]


def test_no_selection_keeps_every_task_and_copies_the_list():
    selected = select_tasks(TASKS)
    assert selected == TASKS and selected is not TASKS


def test_selection_by_ids_keeps_their_order():
    selected = select_tasks(TASKS, ids=["sympy__sympy-2", "django__django-3", "sympy__sympy-2"])
    assert ids(selected) == ["sympy__sympy-2", "django__django-3"]
    assert ids(select_tasks(TASKS, ids="sympy__sympy-1")) == ["sympy__sympy-1"]


def test_unknown_ids_name_themselves_and_some_known_ones():
    with pytest.raises(TaskLoadError) as caught:
        select_tasks(TASKS, ids=["django__django-33", "nope"])
    assert str(caught.value) == (
        "no task 'django__django-33', 'nope' in the dataset. Did you mean 'django__django-3'? "
        "Tasks there: django__django-1, django__django-2, django__django-3, django__django-4, "
        "django__django-5, ... (7 in all)."
    )


def test_selection_by_pattern_searches_the_id():
    assert ids(select_tasks(TASKS, pattern="sympy")) == ["sympy__sympy-1", "sympy__sympy-2"]
    assert ids(select_tasks(TASKS, pattern=r"-[45]$")) == ["django__django-4", "django__django-5"]


def test_pattern_errors_are_clear():
    with pytest.raises(TaskLoadError, match=r"invalid task pattern '\(django': missing \)"):
        select_tasks(TASKS, pattern="(django")
    with pytest.raises(TaskLoadError, match=r"no task id matches the pattern 'flask'\. Tasks"):
        select_tasks(TASKS, pattern="flask")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0:2", ["django__django-1", "django__django-2"]),
        (":1", ["django__django-1"]),
        ("-2:", ["sympy__sympy-1", "sympy__sympy-2"]),
        ("::3", ["django__django-1", "django__django-4", "sympy__sympy-2"]),
        (" 1 : 3 ", ["django__django-2", "django__django-3"]),
        ("5:", ["sympy__sympy-1", "sympy__sympy-2"]),
        (slice(None, 1), ["django__django-1"]),
    ],
)
def test_selection_by_slice(text, expected):
    assert ids(select_tasks(TASKS, slice_=text)) == expected


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("5", "it needs one or two ':'"),
        ("1:2:3:4", "it needs one or two ':'"),
        ("a:b", "its bounds must be whole numbers"),
        ("1.5:", "its bounds must be whole numbers"),
        ("::0", "its step cannot be zero"),
    ],
)
def test_bad_slices_are_clear(text, why):
    with pytest.raises(TaskLoadError) as caught:
        select_tasks(TASKS, slice_=text)
    assert str(caught.value) == (
        f"invalid task slice {text!r}: {why} (Python syntax, e.g. '0:10', ':5', '-3:', '::2')."
    )


def test_a_slice_that_selects_nothing_is_an_error():
    with pytest.raises(TaskLoadError, match=r"slice '10:' selects none of the 7 tasks"):
        select_tasks(TASKS, slice_="10:")


def test_filters_apply_in_order_ids_pattern_slice():
    selected = select_tasks(
        TASKS,
        ids=["sympy__sympy-2", "django__django-5", "django__django-2", "sympy__sympy-1"],
        pattern="django|sympy-1",
        slice_="1:",
    )
    assert ids(selected) == ["django__django-2", "sympy__sympy-1"]
    # The pattern sees only the ids kept: a pattern matching only dropped ids selects nothing.
    with pytest.raises(TaskLoadError, match="no task id matches"):
        select_tasks(TASKS, ids=["django__django-1"], pattern="sympy")
