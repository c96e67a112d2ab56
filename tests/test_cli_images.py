"""``agentkit images``: agentkit's Docker images listed and pruned, against the real engine.

Pruning here touches only throwaway images made by this test (other tests, maybe running at the
same time, use the real instance images): the command's image list is narrowed to them, and
the removal itself is the real one."""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from typer.testing import CliRunner

import agentkit.cli.images as images_module
from agentkit.cli import app
from agentkit.evals.environment import BASE_IMAGE, INSTANCE_IMAGE_LABEL

pytestmark = pytest.mark.docker
runner = CliRunner()
WIDE = {"COLUMNS": "240"}


@pytest.fixture
def client() -> Iterator[Any]:
    import docker

    engine = docker.from_env()
    yield engine
    engine.close()


def build(client: Any, tag: str, labels: dict[str, str]) -> None:
    dockerfile = f"FROM {BASE_IMAGE}\nENV AGENTKIT_TEST_THROWAWAY={uuid.uuid4().hex}\n"
    client.images.build(
        fileobj=io.BytesIO(dockerfile.encode()),
        tag=tag,
        labels=labels,
        network_mode="none",
        rm=True,  # no build container left behind (it would keep a parent image alive)
        forcerm=True,
    )


@pytest.fixture
def throwaways(client) -> Iterator[list[str]]:
    """A labelled instance image and one found only by its name."""
    suffix = uuid.uuid4().hex[:8]
    labelled = f"agentkit-task/pytest-throwaway-{suffix}:a"
    unlabelled = f"agentkit-task/pytest-nolabel-{suffix}:b"
    build(client, labelled, {INSTANCE_IMAGE_LABEL: f"throwaway-{suffix}"})
    build(client, unlabelled, {})
    yield [labelled, unlabelled]
    for tag in (labelled, unlabelled):
        try:
            client.images.remove(tag, force=True)
        except Exception:  # already removed by the test
            pass


def only(tags: list[str]):
    real = images_module.list_images

    def narrowed(client: Any) -> list[images_module.AgentkitImage]:
        return [i for i in real(client) if set(i.tags) & set(tags) or i.kind == "base"]

    return narrowed


def test_images_are_listed_with_size_and_time(throwaways):
    result = runner.invoke(app, ["images"], env=WIDE)
    assert result.exit_code == 0, result.output
    labelled, unlabelled = throwaways
    assert labelled in result.output and unlabelled in result.output
    assert f"throwaway-{labelled.split('-')[-1].split(':')[0]}" in result.output
    assert BASE_IMAGE in result.output and "(base image)" in result.output
    assert " MB " in result.output


def test_prune_removes_instance_images_keeps_the_base_and_images_in_use(
    throwaways, client, monkeypatch
):
    import docker

    monkeypatch.setattr(images_module, "list_images", only(throwaways))
    labelled, unlabelled = throwaways
    container = client.containers.create(labelled, command="true")
    try:
        result = runner.invoke(app, ["images", "--prune"], env=WIDE)
        assert result.exit_code == 0, result.output
        assert f"removed {unlabelled}" in result.output
        assert f"kept {labelled}: in use by a container" in result.output
        assert f"kept {BASE_IMAGE}: the base image (--all removes it too)" in result.output
    finally:
        container.remove(force=True)
    with pytest.raises(docker.errors.ImageNotFound):
        client.images.get(unlabelled)

    result = runner.invoke(app, ["images", "--prune"], env=WIDE)
    assert result.exit_code == 0 and f"removed {labelled}" in result.output
    assert "Removed 1 image." in " ".join(result.output.split())
    client.images.get(BASE_IMAGE)  # still there


def test_all_needs_prune():
    result = runner.invoke(app, ["images", "--all"])
    assert result.exit_code == 2 and "--all goes with --prune" in result.output
