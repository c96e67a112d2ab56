"""``agentkit images``: the Docker images agentkit built on this machine, and removing them.

Two kinds exist. Instance images (``agentkit-task/REPO:HASH``, labelled
``agentkit.instance-image=INSTANCE_ID``) are built per repository commit, on demand, and cached:
every run on a new commit leaves one, so they pile up, and any of them is rebuilt in seconds
when needed again. The base image (``agentkit-base:bookworm``) is what they are built from; it
takes a minute or more to make (``scripts/setup.sh``), so pruning keeps it unless asked.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel
from rich.console import Console
from rich.table import Table
from rich.text import Text

from agentkit.errors import UserFacingError

__all__ = ["AgentkitImage", "images_command", "list_images", "prune_images"]


class AgentkitImage(BaseModel):
    id: str
    tags: list[str]
    kind: Literal["task", "base"]
    instance_id: str | None = None
    """For an instance image: the task it was first built for (others at the same commit
    share it)."""
    size: int
    created: str


def _client() -> Any:
    from agentkit.runtime import docker_available

    problem = docker_available()
    if problem:
        raise UserFacingError(problem)
    import docker

    return docker.from_env()


def list_images(client: Any) -> list[AgentkitImage]:
    """Instance images (by label, or by name for any built without it) and the base image."""
    from agentkit.evals.environment import BASE_IMAGE, INSTANCE_IMAGE_LABEL, INSTANCE_IMAGE_REPO

    found: dict[str, AgentkitImage] = {}
    base_repo = BASE_IMAGE.rsplit(":", 1)[0]
    candidates = [
        *client.images.list(filters={"label": INSTANCE_IMAGE_LABEL}),
        *client.images.list(filters={"reference": f"{INSTANCE_IMAGE_REPO}/*"}),
        *client.images.list(filters={"reference": base_repo}),
    ]
    for image in candidates:
        if image.id in found:
            continue
        labels = image.labels or {}
        tags = sorted(image.tags)
        is_base = any(tag.startswith(f"{base_repo}:") for tag in tags)
        is_task = not is_base and (
            INSTANCE_IMAGE_LABEL in labels
            or any(tag.startswith(f"{INSTANCE_IMAGE_REPO}/") for tag in tags)
        )
        found[image.id] = AgentkitImage(
            id=image.short_id.removeprefix("sha256:"),
            tags=tags,
            kind="task" if is_task else "base",
            instance_id=labels.get(INSTANCE_IMAGE_LABEL),
            size=int(image.attrs.get("Size") or 0),
            created=str(image.attrs.get("Created") or ""),
        )
    return sorted(found.values(), key=lambda i: (i.kind != "base", i.tags, i.created))


def prune_images(
    client: Any, images: list[AgentkitImage], *, include_base: bool = False
) -> tuple[list[AgentkitImage], list[tuple[AgentkitImage, str]]]:
    """Remove instance images (and the base image with ``include_base``); what was removed,
    and what was kept with why (an image a container still uses is never forced out)."""
    from docker.errors import APIError, ImageNotFound

    removed: list[AgentkitImage] = []
    kept: list[tuple[AgentkitImage, str]] = []
    # The base image last: instance images are built on it.
    for image in sorted(images, key=lambda i: i.kind == "base"):
        if image.kind == "base" and not include_base:
            kept.append((image, "the base image (--all removes it too)"))
            continue
        try:
            # Only agentkit's own names: an image the user also tagged keeps their tag.
            for name in _own_tags(image) or [image.id]:
                client.images.remove(name)
        except ImageNotFound:
            pass  # gone already (removed by another process)
        except APIError as exc:
            reason = exc.explanation or str(exc)
            if exc.status_code == 409:
                reason = f"in use by a container ({reason})"
            kept.append((image, str(reason)))
            continue
        removed.append(image)
    return removed, kept


def _own_tags(image: AgentkitImage) -> list[str]:
    from agentkit.evals.environment import BASE_IMAGE, INSTANCE_IMAGE_REPO

    prefix = (
        f"{INSTANCE_IMAGE_REPO}/" if image.kind == "task" else f"{BASE_IMAGE.rsplit(':', 1)[0]}:"
    )
    return [tag for tag in image.tags if tag.startswith(prefix)]


def _size(size: int) -> str:
    return f"{size / 1e9:.1f} GB" if size >= 1e9 else f"{size / 1e6:.0f} MB"


def _when(created: str) -> str:
    """The engine's UTC time (nanoseconds and all) as local minutes."""
    match = re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", created)
    if match is None:
        return created or "-"
    moment = datetime.fromisoformat(match.group(0)).replace(tzinfo=UTC)
    return moment.astimezone().strftime("%Y-%m-%d %H:%M")


def _name(image: AgentkitImage) -> str:
    return ", ".join(image.tags) or f"<untagged {image.id}>"


def images_command(prune: bool, include_base: bool, console: Console | None = None) -> int:
    """List agentkit's images, or remove them with ``prune``; the exit code."""
    console = console or Console(emoji=False)  # a tag like NAME:a: is no emoji
    client = _client()
    try:
        images = list_images(client)
        if not prune:
            _print_list(console, images)
            return 0
        removed, kept = prune_images(client, images, include_base=include_base)
    finally:
        client.close()
    for image in removed:
        console.print(Text(f"removed {_name(image)}"))
    for image, why in kept:
        console.print(Text(f"kept {_name(image)}: {why}"))
    if not removed:
        console.print("Nothing removed.")
    else:
        count = len(removed)
        console.print(
            f"Removed {count} image{'s' if count != 1 else ''}. Instance images are rebuilt "
            "when a run needs them again."
        )
    return 0


def _print_list(console: Console, images: list[AgentkitImage]) -> None:
    if not images:
        console.print("No agentkit images on this machine.")
        return
    table = Table(title="agentkit's Docker images")
    table.add_column("image", overflow="fold")
    table.add_column("built for", overflow="fold")
    table.add_column("size", no_wrap=True)
    table.add_column("created", no_wrap=True)
    for image in images:
        what = "(base image)" if image.kind == "base" else (image.instance_id or "-")
        table.add_row(Text(_name(image)), Text(what), _size(image.size), _when(image.created))
    console.print(table)
    tasks = [image for image in images if image.kind == "task"]
    console.print(
        f"{len(tasks)} instance image{'s' if len(tasks) != 1 else ''}; sizes include the layers "
        "they share with the base image, which are stored once. `agentkit images --prune` "
        "removes the instance images (`--all`: the base image too).",
        highlight=False,
    )
