"""SWE-bench instance loading: every file shape the ecosystem uses."""

import json

import pytest

from agentkit.tasks import Task, TaskLoadError, load_tasks, save_tasks

RECORD = {
    "instance_id": "o__r-1",
    "repo": "o/r",
    "base_commit": "abc",
    "patch": "p",
    "test_patch": "tp",
    "problem_statement": "bug",
    "FAIL_TO_PASS": json.dumps(["t.py::a"]),
    "PASS_TO_PASS": "[]",
    "extra_field": {"kept": True},
}


def test_json_string_test_lists_decode_to_lists():
    task = Task.model_validate(RECORD)
    assert task.FAIL_TO_PASS == ["t.py::a"]
    assert task.PASS_TO_PASS == []


@pytest.mark.parametrize("shape", ["jsonl", "list", "keyed"])
def test_all_dataset_shapes_load(tmp_path, shape):
    path = tmp_path / "d.json"
    second = {**RECORD, "instance_id": "o__r-2"}
    if shape == "jsonl":
        path.write_text(json.dumps(RECORD) + "\n\n" + json.dumps(second) + "\n")
    elif shape == "list":
        path.write_text(json.dumps([RECORD, second]))
    else:
        path.write_text(
            json.dumps(
                {
                    r["instance_id"]: {k: v for k, v in r.items() if k != "instance_id"}
                    for r in (RECORD, second)
                }
            )
        )
    tasks = load_tasks(path)
    assert [t.instance_id for t in tasks] == ["o__r-1", "o__r-2"]


def test_extra_fields_survive_a_save_and_load(tmp_path):
    path = tmp_path / "d.jsonl"
    save_tasks([Task.model_validate(RECORD)], path)
    (task,) = load_tasks(path)
    assert task.model_extra == {"extra_field": {"kept": True}}


def test_errors_name_the_problem(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(RECORD) + "\n{not json\n")
    with pytest.raises(TaskLoadError, match=r"bad.jsonl:2: not valid JSON"):
        load_tasks(bad)
    dup = tmp_path / "dup.jsonl"
    dup.write_text(json.dumps(RECORD) + "\n" + json.dumps(RECORD) + "\n")
    with pytest.raises(TaskLoadError, match="duplicate instance ids: o__r-1"):
        load_tasks(dup)
    with pytest.raises(TaskLoadError, match="cannot read dataset"):
        load_tasks(tmp_path / "missing.jsonl")
    invalid = tmp_path / "invalid.jsonl"
    invalid.write_text(json.dumps({"repo": "x"}) + "\n")
    with pytest.raises(TaskLoadError, match="instance 1 is not a valid task"):
        load_tasks(invalid)
