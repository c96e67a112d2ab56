"""The interface and configs of a weight sync (:mod:`.weight_sync` has the two kinds): a
:class:`WeightSync` saves the trainer's model as a numbered version, has the server load it,
verifies it with the probe of :mod:`.weight_sync_checks`, and keeps every HTTP call under a
timeout. Subclasses say how a version is written and loaded."""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field

from .weight_sync_checks import (
    Probe,
    ProbeConfig,
    ProbeReport,
    WeightMismatch,
    WeightSyncError,
    WeightSyncTimeout,
    max_abs_diff,
    mismatch_message,
    trainer_logprobs,
)

if TYPE_CHECKING:
    import httpx2


class _SyncConfigBase(BaseModel):
    model_config = ConfigDict(extra="forbid")

    base_url: str
    """The server's root or its ``/v1`` root, e.g. ``VLLMServer.base_url``."""
    model_dir: str
    """The base model's directory: the probe's tokenizer, and tokenizer files copied into each
    saved version so every version directory is complete."""
    output_dir: str
    """Where versioned weight directories are written."""
    request_timeout_s: float = Field(default=60.0, gt=0)
    """Limit of each short call (probes, cache reset, adapter unload)."""
    load_timeout_s: float = Field(default=600.0, gt=0)
    """Limit of loading one version (reading it from disk on the server)."""
    verify: bool = True
    """Compare the server's log-probabilities with the trainer's after every sync."""
    probe: ProbeConfig = Field(default_factory=lambda: ProbeConfig())
    keep_versions: int | None = Field(default=2, ge=1)
    """Versions kept on disk (and, for LoRA, loaded on the server); ``None`` keeps all."""


class FullSyncConfig(_SyncConfigBase):
    """Full weights, reloaded from disk into the served model."""

    type: Literal["full"] = "full"
    served_model_name: str | None = None
    """The base model's name on the server; asked from ``/v1/models`` when unset."""
    pause: Literal["none", "wait", "keep", "abort"] = "wait"
    """Pause generation around the reload (``/pause?mode=…``): ``wait`` lets running requests
    finish on the old weights (free when none runs; in asynchronous RL it keeps every reply on
    one version), ``keep`` freezes them until the resume, ``abort`` ends them. ``none`` reloads
    under running requests, which may then mix versions mid-sequence, and the server then
    refuses to reset its prefix cache while they hold blocks (a :class:`WeightSyncError`)."""


class LoRASyncConfig(_SyncConfigBase):
    """A LoRA adapter, loaded under a new model name per version."""

    type: Literal["lora"] = "lora"
    adapter_prefix: str = Field(default="policy", pattern=r"^[A-Za-z0-9_.-]+$")
    """Version ``n`` is served as ``{adapter_prefix}-v{n}``."""
    max_lora_rank: int | None = Field(default=None, ge=1)
    """The server's ``--max-lora-rank``; adapters above it are refused before loading."""
    check_adapter_keys: bool = True
    """Refuse, before loading, an adapter whose keys vLLM would skip or refuse."""


WeightSyncConfig = Annotated[FullSyncConfig | LoRASyncConfig, Field(discriminator="type")]


class SyncResult(BaseModel):
    """One completed sync: which version, under which name, from where, and how long it took."""

    model_config = ConfigDict(extra="forbid")

    version: int
    model_name: str
    """The ``model`` to send to sample from this version."""
    path: str
    save_s: float
    load_s: float
    verify_s: float
    report: ProbeReport | None = None


class WeightSync(ABC):
    """Moves a trainer's model into a vLLM server as policy version after version.

    ``await sync(model)`` saves, loads and (unless turned off) verifies, then returns a
    :class:`SyncResult` whose ``model_name`` requests must use. Version 0 is what the server
    started with. Use as ``async with`` (or call :meth:`aclose`) to release the HTTP client.
    """

    kind: Literal["full", "lora"]

    def __init__(self, config: FullSyncConfig | LoRASyncConfig, probe: Probe | None = None) -> None:
        import httpx2

        self.config = config
        self.version = 0
        self.history: list[SyncResult] = []
        self._probe = probe
        root = config.base_url.rstrip("/")
        self._root = root[: -len("/v1")] if root.endswith("/v1") else root
        self._client = httpx2.AsyncClient(timeout=httpx2.Timeout(config.request_timeout_s))

    # -- the interface ----------------------------------------------------------------------------

    @property
    @abstractmethod
    def model_name(self) -> str:
        """The name that serves the current version."""

    async def sync(self, model: Any, version: int | None = None) -> SyncResult:
        """Publish ``model`` as ``version`` (default: the next one) and verify it is served."""
        version = self.version + 1 if version is None else version
        if version <= self.version:
            raise WeightSyncError(
                f"Policy versions must increase: {version} follows {self.version}."
            )
        started = time.monotonic()
        path = await asyncio.to_thread(self._save, model, version)
        saved = time.monotonic()
        name = await self._load(model, path, version)
        loaded = time.monotonic()
        self.version = version
        report = await self.verify(model, name) if self.config.verify else None
        result = SyncResult(
            version=version, model_name=name, path=str(path), save_s=saved - started,
            load_s=loaded - saved, verify_s=time.monotonic() - loaded, report=report,
        )  # fmt: skip
        self.history.append(result)
        await self._retire()
        return result

    def next_free_version(self, at_least: int) -> int:
        """The first version from ``at_least`` on with nothing on disk yet: a resumed run
        publishes its restored weights under it (the versions an interrupted run wrote stay)."""
        version = max(at_least, self.version + 1)
        while self._version_dir(version).exists():
            version += 1
        return version

    async def verify(self, model: Any, model_name: str | None = None) -> ProbeReport:
        """Score the probe on the server (``model_name``, default the current one) and with
        ``model``; raise :class:`WeightMismatch` when they differ beyond the tolerance."""
        name = model_name or self.model_name
        probe = self._probe
        if probe is None:
            probe = await asyncio.to_thread(
                Probe.from_model_dir, self.config.model_dir, self.config.probe
            )
            self._probe = probe
        ids = probe.prompt_ids + probe.continuation_ids
        start = len(probe.prompt_ids)
        server = await self._prompt_logprobs(name, ids, start)
        trainer = await asyncio.to_thread(trainer_logprobs, model, ids, start)
        report = ProbeReport(
            model_name=name, trainer_logprobs=trainer, server_logprobs=server,
            max_diff=max_abs_diff(trainer, server), atol=self.config.probe.atol,
        )  # fmt: skip
        if self.config.probe.generate_tokens:
            generated, served = await self._greedy(name, probe.prompt_ids)
            if generated:
                scored = await asyncio.to_thread(
                    trainer_logprobs, model, probe.prompt_ids + generated, start
                )
                report.generated_ids = generated
                report.server_generated_logprobs = served
                report.trainer_generated_logprobs = scored
                report.max_generated_diff = max_abs_diff(scored, served)
        if not report.ok:
            raise WeightMismatch(mismatch_message(report, self.kind), report)
        return report

    async def aclose(self) -> None:
        await self._client.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # -- what each kind does ----------------------------------------------------------------------

    @abstractmethod
    def _version_dir(self, version: int) -> Path: ...

    @abstractmethod
    def _write(self, model: Any, out: Path) -> None: ...

    @abstractmethod
    async def _load(self, model: Any, path: Path, version: int) -> str: ...

    async def _retire(self) -> None:
        """Remove what the versions beyond ``keep_versions`` left behind."""
        keep = self.config.keep_versions
        if keep is None:
            return
        for old in self.history[:-keep]:
            shutil.rmtree(old.path, ignore_errors=True)

    def _save(self, model: Any, version: int) -> Path:
        """Write the version's directory under a temporary name and rename it into place, so
        the server never reads a half-written one."""
        out = self._version_dir(version)
        if out.exists():
            raise WeightSyncError(f"{out} already exists: each version is written once.")
        out.parent.mkdir(parents=True, exist_ok=True)
        staging = out.with_name(f".{out.name}.{os.getpid()}.tmp")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
        try:
            self._write(model, staging)
            os.replace(staging, out)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return out

    # -- HTTP -------------------------------------------------------------------------------------

    async def _post(
        self, path: str, what: str, *, body: Any = None, timeout_s: float | None = None,
        params: dict[str, str] | None = None,
    ) -> Any:  # fmt: skip
        """POST and return the decoded JSON (``None`` for an empty body); every failure becomes
        a :class:`WeightSyncError` that says what was being done."""
        import httpx2

        limit = timeout_s or self.config.request_timeout_s
        url = f"{self._root}{path}"
        try:
            async with asyncio.timeout(limit):
                response = await self._client.post(
                    url, json=body, params=params, timeout=httpx2.Timeout(limit)
                )
        except (TimeoutError, httpx2.TimeoutException) as exc:
            raise WeightSyncTimeout(
                f"{what} did not finish within {limit:g} s (POST {url}): the server is hung or "
                "overloaded, and may now hold partly updated weights. Restart it or sync again; "
                "raise the timeout if loading is just slow."
            ) from exc
        except httpx2.HTTPError as exc:
            raise WeightSyncError(f"{what} failed: cannot reach {url}: {exc}") from exc
        if response.status_code == 404 and is_missing_route(response):
            raise WeightSyncError(
                f"{what} failed: the server has no {path} route. Start it with "
                "VLLM_SERVER_DEV_MODE=1 (and, for LoRA, VLLM_ALLOW_RUNTIME_LORA_UPDATING=1 and "
                "--enable-lora); rl_server_config builds such a configuration."
            )
        if response.status_code != 200:
            raise WeightSyncError(
                f"{what} failed: HTTP {response.status_code} from {url}: {error_text(response)}"
            )
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            return response.text

    async def _prompt_logprobs(self, name: str, ids: list[int], start: int) -> list[float]:
        body = {
            "model": name, "prompt": ids, "max_tokens": 1, "temperature": 0.0,
            "prompt_logprobs": 0,
        }  # fmt: skip
        data = await self._post("/v1/completions", f"Probing {name!r}", body=body)
        try:
            entries = data["choices"][0]["prompt_logprobs"]
            return [float(entries[i][str(ids[i])]["logprob"]) for i in range(start, len(ids))]
        except (KeyError, IndexError, TypeError) as exc:
            raise WeightSyncError(
                f"Probing {name!r}: the server's answer has no prompt log-probabilities "
                f"({exc!r}); it needs a vLLM that supports prompt_logprobs on /v1/completions."
            ) from exc

    async def _greedy(self, name: str, prompt: list[int]) -> tuple[list[int], list[float]]:
        body = {
            "model": name, "prompt": prompt, "max_tokens": self.config.probe.generate_tokens,
            "temperature": 0.0, "logprobs": 0, "return_token_ids": True,
        }  # fmt: skip
        data = await self._post("/v1/completions", f"Sampling {name!r}", body=body)
        try:
            choice = data["choices"][0]
            ids = [int(i) for i in choice["token_ids"]]
            values = [float(v) for v in choice["logprobs"]["token_logprobs"]]
        except (KeyError, IndexError, TypeError) as exc:
            raise WeightSyncError(
                f"Sampling {name!r}: the server's answer lacks token ids or log-probabilities "
                f"({exc!r})."
            ) from exc
        return ids, values


def is_missing_route(response: httpx2.Response) -> bool:
    """FastAPI's answer for a path with no route (not vLLM's 404 for an unknown model)."""
    try:
        return bool(response.json() == {"detail": "Not Found"})
    except ValueError:
        return False


def error_text(response: httpx2.Response) -> str:
    try:
        data = response.json()
    except ValueError:
        return response.text[:1000] or "(empty body)"
    if isinstance(data, dict):
        error = data.get("error", data.get("detail", data))
        if isinstance(error, dict):
            error = error.get("message", error)
        return str(error)[:1000]
    return str(data)[:1000]
