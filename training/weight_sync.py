"""Moving the trainer's weights into a running vLLM server, and proving they arrived.

Two ways, one interface (:class:`WeightSync`), both over the server's HTTP API:

* :class:`FullWeightSync` saves the whole model as a ``from_pretrained`` directory (safetensors)
  under a versioned name, has every worker reload it (``POST /collective_rpc reload_weights``)
  and drops the prefix cache (``POST /reset_prefix_cache``) so no KV block of the old weights is
  reused. The served model name stays the same; the version is recorded.
* :class:`LoRAWeightSync` saves only the adapter and loads it under a new name per policy
  version (``policy-v3``), so each request names the version it samples from and older versions
  stay servable while rollouts that use them finish (bounded staleness); the oldest are unloaded.

Both known silent failures are designed out: every call has a timeout and a hung server raises
:class:`WeightSyncTimeout` instead of blocking the trainer, and every sync ends with a probe
(:mod:`.weight_sync_checks`) that compares the server's log-probabilities with the trainer's and
raises :class:`WeightMismatch` naming the largest difference and the likely cause.

The server needs the RL routes (``VLLM_SERVER_DEV_MODE=1``) and, for LoRA, run-time adapters;
:func:`rl_server_config` builds a :class:`~agentkit.backends.vllm_server.VLLMConfig` with them.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agentkit.backends.vllm_server import VLLMConfig

from .weight_sync_base import (
    FullSyncConfig,
    LoRASyncConfig,
    SyncResult,
    WeightSync,
    WeightSyncConfig,
)
from .weight_sync_checks import (
    AdapterMismatch,
    Probe,
    ProbeConfig,
    ProbeReport,
    WeightMismatch,
    WeightSyncError,
    WeightSyncTimeout,
    check_adapter,
    write_tied_output_embedding,
)

if TYPE_CHECKING:
    pass

__all__ = [
    "AdapterMismatch",
    "FullSyncConfig",
    "FullWeightSync",
    "LoRASyncConfig",
    "LoRAWeightSync",
    "Probe",
    "ProbeConfig",
    "ProbeReport",
    "SyncResult",
    "WeightMismatch",
    "WeightSync",
    "WeightSyncConfig",
    "WeightSyncError",
    "WeightSyncTimeout",
    "make_weight_sync",
    "rl_server_config",
    "write_tied_output_embedding",
]

VLLM_LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)
"""The only values vLLM accepts for ``--max-lora-rank``."""


def rl_server_config(
    model_path: str | Path,
    *,
    max_lora_rank: int | None = None,
    max_loras: int = 4,
    **fields: Any,
) -> VLLMConfig:
    """A :class:`VLLMConfig` for a server that takes weight syncs.

    Always: ``VLLM_SERVER_DEV_MODE=1`` (``/collective_rpc``, ``/reset_prefix_cache``, ``/pause``
    exist only then). With ``max_lora_rank``: run-time adapter loading
    (``VLLM_ALLOW_RUNTIME_LORA_UPDATING=1``), ``--enable-lora``, ``--max-lora-rank`` rounded up to
    a value vLLM accepts, and ``--max-loras`` — how many adapters (policy versions) one batch may
    mix, so set it to the staleness bound + 1. Other ``fields`` go to :class:`VLLMConfig`; their
    ``env`` and ``extra_args`` are added after these.
    """
    env = {"VLLM_SERVER_DEV_MODE": "1"}
    args: list[str] = []
    if max_lora_rank is not None:
        fitting = [rank for rank in VLLM_LORA_RANKS if rank >= max_lora_rank]
        if not fitting:
            raise WeightSyncError(
                f"LoRA rank {max_lora_rank} is above the largest vLLM serves ({VLLM_LORA_RANKS[-1]})."
            )
        env["VLLM_ALLOW_RUNTIME_LORA_UPDATING"] = "1"
        args += ["--enable-lora", "--max-lora-rank", str(fitting[0]), "--max-loras", str(max_loras)]
    env.update(fields.pop("env", None) or {})
    args += list(fields.pop("extra_args", None) or [])
    return VLLMConfig(model_path=str(model_path), env=env, extra_args=args, **fields)


class FullWeightSync(WeightSync):
    """Full weights through disk: save, ``reload_weights``, ``reset_prefix_cache``."""

    kind = "full"
    config: FullSyncConfig

    def __init__(self, config: FullSyncConfig, probe: Probe | None = None) -> None:
        super().__init__(config, probe)
        self._served: str | None = config.served_model_name

    @property
    def model_name(self) -> str:
        if self._served is None:
            raise WeightSyncError("The served model name is not known before the first sync.")
        return self._served

    def _version_dir(self, version: int) -> Path:
        return Path(self.config.output_dir) / f"v{version:06d}"

    def _write(self, model: Any, out: Path) -> None:
        from .modeling import save_model

        if hasattr(model, "peft_config"):
            raise WeightSyncError(
                "FullWeightSync got a peft (LoRA) model; sync its adapter with LoRAWeightSync "
                "(type 'lora'), or merge it into a plain model first."
            )
        save_model(model, out, self.config.model_dir)
        write_tied_output_embedding(model, out)

    async def _load(self, model: Any, path: Path, version: int) -> str:
        if self._served is None:
            self._served = await self._base_model_name()
        limit = self.config.load_timeout_s
        body = {
            "method": "reload_weights", "kwargs": {"weights_path": str(path.resolve())},
            "timeout": limit,
        }  # fmt: skip
        pause = self.config.pause
        if pause != "none":
            await self._post("/pause", "Pausing generation", params={"mode": pause})
        try:
            await self._post(
                "/collective_rpc", f"Reloading weights of version {version}", body=body,
                timeout_s=limit,
            )  # fmt: skip
            reset = await self._post("/reset_prefix_cache", "Resetting the prefix cache")
        except BaseException:
            if pause != "none":  # best effort; the reload's own error is the one to report
                with contextlib.suppress(WeightSyncError):
                    await self._post("/resume", "Resuming generation")
            raise
        if pause != "none":
            await self._post("/resume", "Resuming generation")
        if isinstance(reset, dict) and reset.get("success") is False:
            raise WeightSyncError(
                "The server refused to reset its prefix cache (requests still hold cached "
                "blocks), so it may serve the old weights' KV blocks: sync with pause='wait'."
            )
        return self._served

    async def _base_model_name(self) -> str:
        import httpx2

        url = f"{self._root}/v1/models"
        try:
            async with asyncio.timeout(self.config.request_timeout_s):
                response = await self._client.get(url)
            cards = response.json()["data"]
        except (TimeoutError, httpx2.TimeoutException) as exc:
            raise WeightSyncTimeout(
                f"Listing models did not finish within {self.config.request_timeout_s:g} s "
                f"(GET {url})."
            ) from exc
        except (httpx2.HTTPError, ValueError, KeyError, TypeError) as exc:
            raise WeightSyncError(f"Listing models at {url} failed: {exc!r}") from exc
        bases = [card["id"] for card in cards if not card.get("parent")]
        if not bases:
            raise WeightSyncError(f"{url} lists no base model.")
        return str(bases[0])


class LoRAWeightSync(WeightSync):
    """A LoRA adapter per version, loaded by path under its own model name."""

    kind = "lora"
    config: LoRASyncConfig

    def __init__(self, config: LoRASyncConfig, probe: Probe | None = None) -> None:
        super().__init__(config, probe)
        self._loaded: list[str] = []

    @property
    def model_name(self) -> str:
        if self.version == 0:
            raise WeightSyncError("No adapter is loaded yet: sync one first.")
        return self.adapter_name(self.version)

    @property
    def loaded(self) -> list[str]:
        """Adapters this sync loaded and has not unloaded, oldest first."""
        return list(self._loaded)

    def adapter_name(self, version: int) -> str:
        return f"{self.config.adapter_prefix}-v{version}"

    def _version_dir(self, version: int) -> Path:
        return Path(self.config.output_dir) / self.adapter_name(version)

    def _write(self, model: Any, out: Path) -> None:
        from .modeling import save_model

        if not hasattr(model, "peft_config"):
            raise WeightSyncError(
                "LoRAWeightSync needs a peft (LoRA) model; sync full weights with "
                "FullWeightSync (type 'full')."
            )
        save_model(model, out, self.config.model_dir)

    async def _load(self, model: Any, path: Path, version: int) -> str:
        name = self.adapter_name(version)
        if self.config.check_adapter_keys:
            await asyncio.to_thread(check_adapter, path, model, self.config.max_lora_rank)
        body = {"lora_name": name, "lora_path": str(path.resolve())}
        try:
            await self._post(
                "/v1/load_lora_adapter", f"Loading LoRA adapter {name!r}", body=body,
                timeout_s=self.config.load_timeout_s,
            )  # fmt: skip
        except WeightSyncTimeout:
            raise
        except WeightSyncError as exc:
            raise AdapterMismatch(f"vLLM refused the adapter of version {version}: {exc}") from exc
        self._loaded.append(name)
        return name

    async def unload(self, name: str) -> None:
        """Stop serving one adapter (its requests then fail with 404)."""
        await self._post(
            "/v1/unload_lora_adapter", f"Unloading LoRA adapter {name!r}", body={"lora_name": name}
        )
        self._loaded.remove(name)

    async def unload_all(self) -> None:
        """Stop serving every adapter this sync loaded (at the end of a run on a server that
        goes on serving, whose adapter slots and names they would otherwise keep)."""
        for name in list(self._loaded):
            await self.unload(name)

    async def _retire(self) -> None:
        keep = self.config.keep_versions
        if keep is None:
            return
        for old in self.history[:-keep]:
            name = self.adapter_name(old.version)
            if name in self._loaded:
                await self.unload(name)
        await super()._retire()


def make_weight_sync(
    config: FullSyncConfig | LoRASyncConfig, probe: Probe | None = None
) -> WeightSync:
    """The implementation a config's ``type`` names."""
    if isinstance(config, LoRASyncConfig):
        return LoRAWeightSync(config, probe)
    return FullWeightSync(config, probe)
