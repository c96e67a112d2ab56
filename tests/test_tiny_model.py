"""The tiny local chat model: deterministic offline build, cache, reload, template, tool calls."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from agentkit.backends.tiny_model import (
    MARKER_FILE,
    TOOL_TOKENS,
    VOCAB_SIZE,
    build_tiny_chat_model,
    main,
)

BASH_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "bash",
        "description": "Run a command.",
        "parameters": {
            "type": "object",
            "properties": {"command": {"type": "string"}},
            "required": ["command"],
        },
    },
}


@pytest.fixture(scope="session")
def tiny_models_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One directory per test session; other test files build into the same place and reuse."""
    return tmp_path_factory.getbasetemp() / "tiny-models"


@pytest.fixture(scope="session")
def plain_model(tiny_models_root: Path) -> Path:
    return build_tiny_chat_model(tiny_models_root / "plain")


@pytest.fixture(scope="session")
def taught_model(tiny_models_root: Path) -> Path:
    return build_tiny_chat_model(tiny_models_root / "taught", teach_tool_calls=True)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_build_is_deterministic_and_cached(plain_model: Path, tmp_path: Path) -> None:
    marker = plain_model / MARKER_FILE
    before = marker.stat().st_mtime_ns
    assert build_tiny_chat_model(plain_model) == plain_model
    assert marker.stat().st_mtime_ns == before, "a complete build with equal parameters is reused"

    again = build_tiny_chat_model(tmp_path / "again")
    for name in ("model.safetensors", "tokenizer.json", "config.json", "chat_template.jinja"):
        assert _digest(again / name) == _digest(plain_model / name), name

    other_seed = build_tiny_chat_model(tmp_path / "again", seed=1)  # new parameters: rebuilt
    assert json.loads((other_seed / MARKER_FILE).read_text())["seed"] == 1
    assert _digest(other_seed / "model.safetensors") != _digest(plain_model / "model.safetensors")


def test_incomplete_directory_is_rebuilt(tmp_path: Path) -> None:
    out = tmp_path / "m"
    out.mkdir()
    (out / "config.json").write_text("{}")  # left over, no marker
    build_tiny_chat_model(out)
    assert (out / MARKER_FILE).is_file()
    assert (out / "model.safetensors").is_file()


def test_reloads_offline_with_from_pretrained(plain_model: Path) -> None:
    script = f"""
import json, torch
from transformers import AutoModelForCausalLM, AutoTokenizer
tok = AutoTokenizer.from_pretrained({str(plain_model)!r})
model = AutoModelForCausalLM.from_pretrained({str(plain_model)!r})
ids = tok.apply_chat_template([{{"role": "user", "content": "hi"}}], add_generation_prompt=True)
ids = ids if isinstance(ids, list) else ids["input_ids"]
logits = model(torch.tensor([ids])).logits
print(json.dumps({{"vocab": model.config.vocab_size, "tokens": len(tok),
                  "dtype": str(model.dtype), "shape": list(logits.shape)}}))
"""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, check=False
    )
    assert done.returncode == 0, done.stderr
    info = json.loads(done.stdout.strip().splitlines()[-1])
    assert info["vocab"] == VOCAB_SIZE
    assert 900 <= info["tokens"] <= VOCAB_SIZE
    assert info["dtype"] == "torch.float32"
    assert info["shape"][-1] == VOCAB_SIZE


def test_every_loader_tokenizes_alike(plain_model: Path) -> None:
    """AutoTokenizer builds a Qwen2Tokenizer from vocab and merges; it must agree with the file."""
    from tokenizers import Tokenizer
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    raw = Tokenizer.from_file(str(plain_model / "tokenizer.json"))
    auto = AutoTokenizer.from_pretrained(plain_model)
    generic = PreTrainedTokenizerFast.from_pretrained(plain_model)
    text = (
        'Héllo  wörld!! 12345 don\'t <tool_call>{"a": [1, 2]}</tool_call>\n\n'
        "  def f(x):\n\treturn x  <|im_end|> 日本"
    )
    ids = raw.encode(text).ids
    assert auto.encode(text) == ids
    assert generic.encode(text) == ids
    assert auto.decode(ids) == text


def test_special_and_tool_tokens(plain_model: Path) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(plain_model)
    added = {t.content: t for t in tok.added_tokens_decoder.values()}
    for token in ("<|im_start|>", "<|im_end|>", "<|endoftext|>"):
        assert added[token].special
    for token in TOOL_TOKENS:
        assert not added[token].special  # decoding keeps them
        assert len(tok.encode(token)) == 1
    assert tok.decode(tok.encode("<|im_start|>user\nhi<|im_end|>"), skip_special_tokens=True) == (
        "user\nhi"
    )
    text = '<tool_call>{"name": "bash"}</tool_call>'
    assert tok.decode(tok.encode(text), skip_special_tokens=True) == text
    assert tok.eos_token == "<|im_end|>"


GOLDEN = (
    "<|im_start|>system\nBe brief.\n\n# Tools\n\n"
    "To use a tool, reply with a <tool_call></tool_call> block holding one JSON object with the "
    'keys "name" and "arguments". The tools are:\n'
    '{"name": "bash", "description": "Run a command.", "parameters": {"type": "object", '
    '"properties": {"command": {"type": "string"}}, "required": ["command"]}}<|im_end|>\n'
    "<|im_start|>user\nList the files.<|im_end|>\n"
    "<|im_start|>assistant\nLooking.\n"
    '<tool_call>{"name": "bash", "arguments": {"command": "ls"}}</tool_call><|im_end|>\n'
    "<|im_start|>tool\n<tool_response>\nREADME.md\n</tool_response><|im_end|>\n"
    "<|im_start|>assistant\n"
)


def test_chat_template_golden(plain_model: Path) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(plain_model)
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "List the files."},
        {
            "role": "assistant",
            "content": "Looking.",
            "tool_calls": [
                {"type": "function", "function": {"name": "bash", "arguments": {"command": "ls"}}}
            ],
        },
        {"role": "tool", "content": "README.md", "tool_call_id": "c1"},
    ]
    rendered = tok.apply_chat_template(
        messages, tools=[BASH_TOOL], tokenize=False, add_generation_prompt=True
    )
    assert rendered == GOLDEN
    # Arguments given as a JSON string (the OpenAI wire shape) render the same.
    messages[2]["tool_calls"][0]["function"]["arguments"] = '{"command": "ls"}'
    assert (
        tok.apply_chat_template(
            messages, tools=[BASH_TOOL], tokenize=False, add_generation_prompt=True
        )
        == GOLDEN
    )
    # Without tools or system: no system turn; without the generation prompt: no open turn.
    bare = tok.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False)
    assert bare == "<|im_start|>user\nhi<|im_end|>\n"
    two_calls = tok.apply_chat_template(
        [
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [
                    {"name": "a", "arguments": {}},
                    {"name": "b", "arguments": {"x": 1}},
                ],
            }
        ],
        tokenize=False,
    )
    assert two_calls == (
        '<|im_start|>assistant\n<tool_call>{"name": "a", "arguments": {}}</tool_call>\n'
        '<tool_call>{"name": "b", "arguments": {"x": 1}}</tool_call><|im_end|>\n'
    )


@pytest.mark.slow
def test_taught_model_emits_parseable_tool_calls(taught_model: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(taught_model)
    model = AutoModelForCausalLM.from_pretrained(taught_model)
    prompts = [
        [{"role": "user", "content": "What is in this directory?"}],
        [
            {"role": "system", "content": "You are an agent fixing bugs in a repository."},
            {"role": "user", "content": "The parser crashes on empty input. " * 20},
        ],
    ]
    for messages in prompts:
        ids = tok.apply_chat_template(messages, tools=[BASH_TOOL], add_generation_prompt=True)
        ids = ids if isinstance(ids, list) else ids["input_ids"]
        with torch.no_grad():
            out = model.generate(torch.tensor([ids]), max_new_tokens=48, do_sample=False)
        text = tok.decode(out[0][len(ids) :], skip_special_tokens=True)
        assert text.startswith("<tool_call>") and text.endswith("</tool_call>"), text
        call = json.loads(text.removeprefix("<tool_call>").removesuffix("</tool_call>"))
        assert call["name"] == "bash"
        assert isinstance(call["arguments"]["command"], str)


def test_cli_builds_into_the_given_directory(
    plain_model: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    main([str(plain_model)])  # already built: the cache answers at once
    assert capsys.readouterr().out.strip() == str(plain_model)
