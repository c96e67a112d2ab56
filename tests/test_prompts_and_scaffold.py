"""Templates fail loudly on missing variables; scaffold files validate and round-trip."""

import pytest

from agentkit.prompts import PromptError, render
from agentkit.scaffold import ScaffoldConfig, ScaffoldConfigError
from agentkit.scaffolds import BUNDLED, load_scaffold


def test_render_fills_variables():
    assert (
        render("Fix {{ task }} in {{ dir }}", task="bug", dir="/testbed") == "Fix bug in /testbed"
    )


def test_missing_variable_is_a_clear_error():
    with pytest.raises(PromptError) as info:
        render("Fix {{ taks }}", "instance_template", task="bug")
    assert str(info.value) == (
        "instance_template: 'taks' is undefined. Variables available to this template: task."
    )


def test_template_syntax_error_names_the_line():
    with pytest.raises(PromptError, match="template syntax error on line 2"):
        render("ok\n{{ broken", "system_template")


@pytest.mark.parametrize("name", sorted(BUNDLED))
def test_bundled_scaffolds_load_and_round_trip_through_yaml(name, tmp_path):
    config = load_scaffold(name)
    path = tmp_path / "s.yaml"
    path.write_text(config.to_yaml())
    assert ScaffoldConfig.from_yaml(path) == config


def test_scaffold_typo_names_the_field(tmp_path):
    path = tmp_path / "s.yaml"
    config = load_scaffold("mini").model_dump(mode="json")
    config["limits"]["max_stpes"] = 3
    import yaml

    path.write_text(yaml.safe_dump(config))
    with pytest.raises(ScaffoldConfigError, match="max_stpes"):
        ScaffoldConfig.from_yaml(path)


def test_unknown_scaffold_lists_the_bundled_ones():
    with pytest.raises(ScaffoldConfigError, match=f"use one of {', '.join(sorted(BUNDLED))} "):
        load_scaffold("nope")


def test_bundled_scaffolds_name_their_type():
    import yaml

    for path in BUNDLED.values():
        assert yaml.safe_load(path.read_text())["type"] == "tool_loop"
