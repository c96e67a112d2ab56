"""Weight sync into a real vLLM server: full weights, LoRA adapters, and every way it can fail.

One server is started for this module (it needs the RL routes and run-time LoRA, so it cannot be
the session's shared one) serving the plain tiny model with LoRA on. Tests that change its base
weights put the original ones back (through a sync, which is itself verified) before they end.
The hang test needs no vLLM: a local TCP server that accepts connections and never answers.
"""

from __future__ import annotations

import asyncio
import copy
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from agentkit.backends.vllm_server import VLLMServer
from agentkit.training.weight_sync import (
    AdapterMismatch,
    FullSyncConfig,
    FullWeightSync,
    LoRASyncConfig,
    LoRAWeightSync,
    ProbeConfig,
    WeightMismatch,
    WeightSyncError,
    WeightSyncTimeout,
    make_weight_sync,
    rl_server_config,
    write_tied_output_embedding,
)
from agentkit.training.weight_sync_checks import check_adapter, trainer_logprobs

pytestmark = pytest.mark.slow

TIGHT = ProbeConfig(atol=1e-4)
"""float32 on both sides agrees to ~5e-7 here; changed weights move log-probs by > 0.05."""


# -- models -------------------------------------------------------------------------------------


@pytest.fixture
def tiny_model(tiny_tool_model: Path) -> Path:
    """The session's tiny chat model, which :func:`rl_vllm_server` serves."""
    return tiny_tool_model


def load(model_dir: Path) -> Any:
    import torch

    from agentkit.training.modeling import load_causal_lm

    return load_causal_lm(
        model_dir, dtype=torch.float32, device=torch.device("cpu"), attn_implementation="sdpa"
    )


def lora_model(model_dir: Path, rank: int = 8, seed: int = 0) -> Any:
    """The base model with a LoRA adapter whose B matrices are perturbed (peft starts them at
    zero, which would make the adapter a no-op and every check pass trivially)."""
    from agentkit.training.modeling import add_lora
    from agentkit.training.sft_config import LoRAConfig

    model = add_lora(load(model_dir), LoRAConfig(rank=rank, alpha=2 * rank))
    perturb(model, seed, only="lora_B", scale=0.05)
    return model


def perturb(model: Any, seed: int, *, only: str | None = None, scale: float = 0.05) -> None:
    import torch

    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if only is None or only in name:
                noise = torch.randn(param.shape, generator=generator, dtype=param.dtype)
                param.add_(noise * scale)


# -- the server ---------------------------------------------------------------------------------


@pytest.fixture
def rl_server(rl_vllm_server: VLLMServer) -> VLLMServer:
    return rl_vllm_server


def full_config(server: VLLMServer, model_dir: Path, out: Path, **fields: Any) -> FullSyncConfig:
    fields.setdefault("probe", TIGHT)
    return FullSyncConfig(
        base_url=server.base_url, model_dir=str(model_dir), output_dir=str(out), **fields
    )


def lora_config(server: VLLMServer, model_dir: Path, out: Path, **fields: Any) -> LoRASyncConfig:
    fields.setdefault("probe", TIGHT)
    return LoRASyncConfig(
        base_url=server.base_url, model_dir=str(model_dir), output_dir=str(out), **fields
    )


@pytest.fixture
async def server_at_base(
    rl_server: VLLMServer, tiny_model: Path, tmp_path: Path
) -> AsyncIterator[VLLMServer]:
    """The server, serving the original weights before and after the test."""
    base = load(tiny_model)
    async with FullWeightSync(full_config(rl_server, tiny_model, tmp_path / "restore-1")) as sync:
        await sync.sync(base)
    yield rl_server
    async with FullWeightSync(full_config(rl_server, tiny_model, tmp_path / "restore-2")) as sync:
        await sync.sync(base)


async def greedy_text(server: VLLMServer, model: str, prompt: list[int]) -> str:
    import httpx2

    body = {"model": model, "prompt": prompt, "max_tokens": 16, "temperature": 0.0}
    async with httpx2.AsyncClient(timeout=60) as client:
        response = await client.post(f"{server.base_url}/completions", json=body)
    response.raise_for_status()
    return str(response.json()["choices"][0]["text"])


# -- (1) full weights ---------------------------------------------------------------------------


@pytest.mark.vllm
async def test_full_sync_moves_the_server_to_the_trainers_weights(
    server_at_base: VLLMServer, tiny_model: Path, tmp_path: Path
) -> None:
    model = load(tiny_model)
    config = full_config(
        server_at_base, tiny_model, tmp_path / "full", pause="wait", keep_versions=1
    )
    async with FullWeightSync(config) as sync:
        before = await sync.verify(model, server_at_base.model_name)
        assert before.max_diff <= TIGHT.atol
        probe = sync._probe
        assert probe is not None and len(probe.prompt_ids) >= TIGHT.min_prompt_tokens
        text_before = await greedy_text(server_at_base, server_at_base.model_name, probe.prompt_ids)

        perturb(model, seed=1)
        with pytest.raises(WeightMismatch):  # the server still serves the old weights
            await sync.verify(model, server_at_base.model_name)

        started = time.monotonic()
        result = await sync.sync(model)
        took = time.monotonic() - started
        assert (result.version, sync.version) == (1, 1)
        assert result.model_name == server_at_base.model_name == sync.model_name
        report = result.report
        assert report is not None and report.ok, report
        assert report.max_diff <= TIGHT.atol and report.max_generated_diff <= TIGHT.atol
        moved = max(
            abs(a - b) for a, b in zip(report.server_logprobs, before.server_logprobs, strict=True)
        )
        assert moved > 0.05, "the server's log-probs did not move"
        assert len(report.generated_ids) == TIGHT.generate_tokens
        text_after = await greedy_text(server_at_base, server_at_base.model_name, probe.prompt_ids)
        assert text_after != text_before
        assert took < 30, f"a sync of the tiny model took {took:.1f} s"

        # The version directory is a complete from_pretrained directory of the trainer's weights.
        saved = load(Path(result.path))
        for (name, a), (_, b) in zip(
            model.state_dict().items(), saved.state_dict().items(), strict=True
        ):
            assert a.equal(b), name
        assert (Path(result.path) / "tokenizer.json").is_file()

        perturb(model, seed=2)
        second = await sync.sync(model, version=5)
        assert second.version == 5 and second.report is not None and second.report.ok
        assert not Path(result.path).exists(), "keep_versions=1 removes older directories"
        assert [r.version for r in sync.history] == [1, 5]
        with pytest.raises(WeightSyncError, match="must increase"):
            await sync.sync(model, version=5)


# -- (2) LoRA -----------------------------------------------------------------------------------


@pytest.mark.vllm
async def test_lora_sync_serves_each_version_under_its_own_name(
    server_at_base: VLLMServer, tiny_model: Path, tmp_path: Path
) -> None:
    model = lora_model(tiny_model, seed=3)
    config = lora_config(server_at_base, tiny_model, tmp_path / "lora", max_lora_rank=8)
    sync = make_weight_sync(config)
    assert isinstance(sync, LoRAWeightSync)
    async with sync:
        first = await sync.sync(model)
        assert first.model_name == "policy-v1" == sync.model_name
        assert first.report is not None and first.report.ok, first.report
        # Equal to the trainer's merged model, and distinct from the base the server still serves.
        merged = copy.deepcopy(model).merge_and_unload()
        ids = sync._probe.prompt_ids + sync._probe.continuation_ids  # type: ignore[union-attr]
        start = len(ids) - len(first.report.server_logprobs)
        expected = trainer_logprobs(merged, ids, start)
        assert (
            max(abs(a - b) for a, b in zip(expected, first.report.server_logprobs, strict=True))
            <= 1e-4
        )
        base = await sync.verify(load(tiny_model), server_at_base.model_name)
        assert max(abs(a - b) for a, b in zip(base.server_logprobs, expected, strict=True)) > 0.05

        perturb(model, seed=4, only="lora_B")
        second = await sync.sync(model)
        assert second.model_name == "policy-v2" and second.report is not None and second.report.ok
        assert sync.loaded == ["policy-v1", "policy-v2"]
        third = await sync.sync(model)  # keep_versions=2: v1 is unloaded and its files removed
        assert third.model_name == "policy-v3"
        assert sync.loaded == ["policy-v2", "policy-v3"]
        assert not Path(first.path).exists() and Path(second.path).exists()
        with pytest.raises(WeightSyncError, match="404|not exist|does not"):
            await sync.verify(model, "policy-v1")


# -- (3) adapters vLLM would not apply ----------------------------------------------------------


class RenamingLoRASync(LoRAWeightSync):
    """Simulates a save that re-prefixes keys (a wrapper model, a renamed layer): layer 1's
    adapter weights are written under ``layers.7``, a module the served model does not have."""

    def _write(self, model: Any, out: Path) -> None:
        from safetensors.torch import load_file, save_file

        super()._write(model, out)
        path = out / "adapter_model.safetensors"
        tensors = {
            key.replace(".layers.1.", ".layers.7."): value
            for key, value in load_file(str(path)).items()
        }
        save_file(tensors, str(path), metadata={"format": "pt"})


@pytest.mark.vllm
async def test_lora_key_mismatches_are_caught(
    server_at_base: VLLMServer, tiny_model: Path, tmp_path: Path
) -> None:
    model = lora_model(tiny_model, seed=5)
    # Checked before loading: the keys that vLLM would silently skip are named.
    config = lora_config(server_at_base, tiny_model, tmp_path / "a", adapter_prefix="renamed-a")
    async with RenamingLoRASync(config) as sync:
        with pytest.raises(AdapterMismatch) as caught:
            await sync.sync(model)
    message = str(caught.value)
    assert "name no adapted module" in message and "model.layers.7.self_attn.q_proj" in message
    assert "missing from it" in message and "model.layers.1.mlp.up_proj" in message

    # Without the check vLLM loads it, skips layer 7 silently — and the probe catches that.
    config = lora_config(
        server_at_base, tiny_model, tmp_path / "b", adapter_prefix="renamed-b",
        check_adapter_keys=False,
    )  # fmt: skip
    async with RenamingLoRASync(config) as sync:
        with pytest.raises(WeightMismatch) as mismatch:
            await sync.sync(model)
    assert "renamed-b-v1" in str(mismatch.value)
    assert "skipped silently" in str(mismatch.value) and "max |difference|" in str(mismatch.value)

    # A rank above the server's --max-lora-rank 8: refused by vLLM, reported as such ...
    wide = lora_model(tiny_model, rank=16, seed=6)
    config = lora_config(server_at_base, tiny_model, tmp_path / "c", adapter_prefix="wide")
    async with LoRAWeightSync(config) as sync:
        with pytest.raises(AdapterMismatch, match="greater than max_lora_rank 8"):
            await sync.sync(wide)
        assert sync.version == 0 and sync.loaded == []
    # ... or, when the sync knows the server's limit, before anything is sent.
    config = lora_config(
        server_at_base, tiny_model, tmp_path / "d", adapter_prefix="wide-d", max_lora_rank=8
    )
    async with LoRAWeightSync(config) as sync:
        with pytest.raises(
            AdapterMismatch, match="rank 16 is above the server's --max-lora-rank 8"
        ):
            await sync.sync(wide)


# -- (5) the verification's report --------------------------------------------------------------


class NoCacheResetSync(FullWeightSync):
    """Simulates a sync whose prefix-cache reset never happened."""

    async def _post(self, path: str, what: str, **kwargs: Any) -> Any:
        if path == "/reset_prefix_cache":
            return {"success": True}
        return await super()._post(path, what, **kwargs)


@pytest.mark.vllm
async def test_verification_names_the_difference_and_the_likely_cause(
    server_at_base: VLLMServer, tiny_model: Path, tmp_path: Path
) -> None:
    other = load(tiny_model)
    perturb(other, seed=7)
    config = full_config(server_at_base, tiny_model, tmp_path / "v", served_model_name=None)
    async with FullWeightSync(config) as sync:
        with pytest.raises(WeightMismatch) as caught:
            await sync.verify(other, server_at_base.model_name)
    report = caught.value.report
    assert report.max_diff > 0.05 and not report.ok
    message = str(caught.value)
    assert f"max |difference| {report.max_diff:.3g}" in message
    assert "tolerance 0.0001" in message and "Likely cause" in message
    assert "does not hold the trainer's weights" in message

    # Weights right, prefix cache stale: the teacher-forced check passes, the cached one fails.
    # (No pause either: pausing with mode=wait clears the caches itself.)
    stale = load(tiny_model)
    config = full_config(server_at_base, tiny_model, tmp_path / "s", pause="none")
    async with NoCacheResetSync(config) as sync:
        await sync.verify(stale, server_at_base.model_name)  # caches the probe prompt
        perturb(stale, seed=8)
        with pytest.raises(WeightMismatch, match="stale prefix cache") as cached:
            await sync.sync(stale)
    assert cached.value.report.max_diff <= TIGHT.atol < cached.value.report.max_generated_diff


# -- (4) hangs ----------------------------------------------------------------------------------


@pytest.fixture
async def silent_server() -> AsyncIterator[str]:
    """A TCP server that accepts connections and never answers: a hung vLLM, as a client sees it."""
    held: list[asyncio.StreamWriter] = []

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        for writer in held:
            writer.close()
        server.close()
        await server.wait_closed()


def random_tiny_lm() -> Any:
    from transformers import Qwen2Config, Qwen2ForCausalLM

    config = Qwen2Config(
        vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
        num_attention_heads=2, num_key_value_heads=2, head_dim=16, tie_word_embeddings=True,
    )  # fmt: skip
    return Qwen2ForCausalLM(config)


async def test_a_hung_server_fails_fast_with_a_clear_error(
    silent_server: str, tmp_path: Path
) -> None:
    from agentkit.training.modeling import add_lora
    from agentkit.training.sft_config import LoRAConfig

    common: dict[str, Any] = {
        "base_url": silent_server, "model_dir": str(tmp_path), "request_timeout_s": 1.5,
        "load_timeout_s": 1.5,
    }  # fmt: skip
    full = FullWeightSync(
        FullSyncConfig(
            output_dir=str(tmp_path / "full"), served_model_name="m", pause="none", **common
        )
    )
    model = random_tiny_lm()
    started = time.monotonic()
    with pytest.raises(WeightSyncTimeout) as caught:
        await full.sync(model)
    assert time.monotonic() - started < 10
    message = str(caught.value)
    assert "Reloading weights of version 1 did not finish within 1.5 s" in message
    assert "/collective_rpc" in message and "hung" in message
    assert full.version == 0, "a failed sync does not advance the version"
    await full.aclose()

    lora = LoRAWeightSync(LoRASyncConfig(output_dir=str(tmp_path / "lora"), **common))
    peft = add_lora(random_tiny_lm(), LoRAConfig(rank=4, alpha=8))
    with pytest.raises(WeightSyncTimeout, match="Loading LoRA adapter 'policy-v1' did not finish"):
        await lora.sync(peft)
    await lora.aclose()


# -- pieces without a server --------------------------------------------------------------------


def test_rl_server_config_sets_the_flags_a_sync_needs(tmp_path: Path) -> None:
    plain = rl_server_config(tmp_path)
    assert plain.env == {"VLLM_SERVER_DEV_MODE": "1"} and plain.extra_args == []
    lora = rl_server_config(
        tmp_path, max_lora_rank=12, max_loras=3, env={"X": "1"}, extra_args=["--enforce-eager"],
        startup_timeout_s=400,
    )  # fmt: skip
    assert lora.env == {
        "VLLM_SERVER_DEV_MODE": "1", "VLLM_ALLOW_RUNTIME_LORA_UPDATING": "1", "X": "1"
    }  # fmt: skip
    assert lora.extra_args == [
        "--enable-lora", "--max-lora-rank", "16", "--max-loras", "3", "--enforce-eager"
    ]  # fmt: skip
    assert lora.startup_timeout_s == 400
    with pytest.raises(WeightSyncError, match="above the largest"):
        rl_server_config(tmp_path, max_lora_rank=1024)


def test_configs_round_trip_through_json(tmp_path: Path) -> None:
    from pydantic import TypeAdapter

    from agentkit.training.weight_sync import WeightSyncConfig

    adapter: TypeAdapter[Any] = TypeAdapter(WeightSyncConfig)
    for config in (
        FullSyncConfig(base_url="http://h:1", model_dir="m", output_dir="o", pause="keep"),
        LoRASyncConfig(base_url="http://h:1", model_dir="m", output_dir="o", max_lora_rank=8),
    ):
        again = adapter.validate_json(config.model_dump_json())
        assert again == config
    with pytest.raises(ValueError):
        FullSyncConfig(base_url="x", model_dir="m", output_dir="o", unknown=1)  # type: ignore[call-arg]


def test_a_tied_head_is_saved_under_its_own_name(tmp_path: Path) -> None:
    """vLLM's in-place reload unties a head that is missing from the checkpoint."""
    from safetensors import safe_open

    from agentkit.training.modeling import save_model

    model = random_tiny_lm()
    save_model(model, tmp_path, tmp_path)
    write_tied_output_embedding(model, tmp_path)
    with safe_open(str(tmp_path / "model.safetensors"), framework="pt") as handle:
        keys = set(handle.keys())
        assert handle.get_tensor("lm_head.weight").equal(model.lm_head.weight.detach())
    assert {"lm_head.weight", "model.embed_tokens.weight"} <= keys
    again = load(tmp_path)
    assert again.lm_head.weight is again.model.embed_tokens.weight
    assert again.lm_head.weight.equal(model.lm_head.weight.detach())


def test_check_adapter_accepts_a_whole_adapter_and_names_what_is_wrong(tmp_path: Path) -> None:
    from agentkit.training.modeling import add_lora
    from agentkit.training.sft_config import LoRAConfig

    model = add_lora(random_tiny_lm(), LoRAConfig(rank=4, alpha=8))
    model.save_pretrained(str(tmp_path / "ok"))
    check_adapter(tmp_path / "ok", model, max_lora_rank=8)
    with pytest.raises(AdapterMismatch, match="rank 4 is above the server's --max-lora-rank 1"):
        check_adapter(tmp_path / "ok", model, max_lora_rank=1)

    config = json.loads((tmp_path / "ok" / "adapter_config.json").read_text())
    config["use_dora"] = True
    (tmp_path / "ok" / "adapter_config.json").write_text(json.dumps(config))
    with pytest.raises(AdapterMismatch, match="DoRA"):
        check_adapter(tmp_path / "ok", model, max_lora_rank=None)
    with pytest.raises(AdapterMismatch, match="is not a saved LoRA adapter"):
        check_adapter(tmp_path, model, max_lora_rank=None)
