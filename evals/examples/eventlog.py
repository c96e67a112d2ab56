"""Example: a mutable default argument shared between instances."""

from agentkit.evals.examples.spec import ExampleSpec

_RECORDER_BASE = '''"""Collect structured events in memory before they are shipped."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

_sequence = itertools.count(1)


@dataclass(frozen=True)
class Event:
    sequence: int
    kind: str
    payload: dict[str, Any]
    tags: tuple[str, ...]


class Recorder:
    """Records events for one component; every event carries the recorder's tags."""

    def __init__(self, component: str, tags: list[str] = []) -> None:
        self.component = component
        self.tags = tags
        self.events: list[Event] = []

    def add_tag(self, tag: str) -> None:
        if tag not in self.tags:
            self.tags.append(tag)

    def record(self, kind: str, **payload: Any) -> Event:
        event = Event(next(_sequence), kind, dict(payload), (self.component, *self.tags))
        self.events.append(event)
        return event
'''

_RECORDER_FIXED = _RECORDER_BASE.replace(
    "    def __init__(self, component: str, tags: list[str] = []) -> None:\n"
    "        self.component = component\n"
    "        self.tags = tags\n",
    "    def __init__(self, component: str, tags: list[str] | None = None) -> None:\n"
    "        self.component = component\n"
    "        self.tags = list(tags) if tags is not None else []\n",
)

_TESTS_BASE = """from eventlog.recorder import Recorder


def test_record_event_carries_component_and_tags():
    recorder = Recorder("billing", ["eu"])
    event = recorder.record("charge", amount=10)
    assert event.kind == "charge"
    assert event.payload == {"amount": 10}
    assert event.tags == ("billing", "eu")
    assert recorder.events == [event]


def test_sequence_increases():
    recorder = Recorder("search", ["a"])
    first = recorder.record("query")
    second = recorder.record("query")
    assert second.sequence > first.sequence


def test_add_tag_is_idempotent():
    recorder = Recorder("auth", ["x"])
    recorder.add_tag("y")
    recorder.add_tag("y")
    assert recorder.tags == ["x", "y"]
"""

_TESTS_NEW = (
    _TESTS_BASE
    + """

def test_default_tags_are_per_recorder():
    first = Recorder("billing")
    first.add_tag("beta")
    second = Recorder("search")
    assert second.tags == []
    assert second.record("query").tags == ("search",)


def test_callers_tag_list_is_not_modified():
    shared = ["eu"]
    Recorder("billing", shared).add_tag("beta")
    assert shared == ["eu"]
"""
)

EXAMPLE = ExampleSpec(
    name="eventlog",
    number=5,
    version="0.9",
    problem_statement="""\
Tags leak between recorders

We create one `Recorder` per component. After the billing recorder does
`add_tag("beta")`, events recorded by a brand-new `Recorder("search")` also carry the `beta`
tag, and `Recorder("search").tags` is `["beta"]` even though no tags were passed.

Also, passing our own list (`Recorder("billing", region_tags)`) and then calling `add_tag`
modifies `region_tags` in the caller, which we reuse for other recorders.
""",
    base_files={
        "pyproject.toml": '[project]\nname = "eventlog"\nversion = "0.9.0"\n',
        "eventlog/__init__.py": "",
        "eventlog/recorder.py": _RECORDER_BASE,
        "tests/test_recorder.py": _TESTS_BASE,
    },
    fix_files={"eventlog/recorder.py": _RECORDER_FIXED},
    test_files={"tests/test_recorder.py": _TESTS_NEW},
    fail_to_pass=[
        "tests/test_recorder.py::test_default_tags_are_per_recorder",
        "tests/test_recorder.py::test_callers_tag_list_is_not_modified",
    ],
    pass_to_pass=[
        "tests/test_recorder.py::test_record_event_carries_component_and_tags",
        "tests/test_recorder.py::test_sequence_increases",
        "tests/test_recorder.py::test_add_tag_is_idempotent",
    ],
)
