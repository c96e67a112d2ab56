"""The backend registry: every short form, config files, YAML round trips, building each kind,
clear errors, and an import of ``agentkit.backends`` that stays free of heavy client libraries."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from agentkit.backends import (
    BackendConfigError,
    GoldBackend,
    GoldConfig,
    OpenAIBackend,
    OpenAIConfig,
    RetryPolicy,
    ScriptedBackend,
    ScriptedConfig,
    VLLMBackend,
    build_backend,
    close_backend,
    dump_backend_config,
    load_backend_config,
    parse_backend_spec,
)
from agentkit.backends.litellm_backend import LiteLLMBackend, LiteLLMConfig
from agentkit.backends.transformers_backend import TransformersBackend, TransformersConfig
from agentkit.backends.vllm_server import VLLMConfig
from agentkit.tasks import Task
from agentkit.tools import get_format, get_tool
from agentkit.types import Message


@pytest.mark.parametrize(
    "spec, expected",
    [
        ("gold", GoldConfig()),
        ("openai:gpt-4o-mini", OpenAIConfig(model="gpt-4o-mini")),
        (
            "openai:Qwen/Qwen3-8B@http://127.0.0.1:8000/v1",
            OpenAIConfig(
                model="Qwen/Qwen3-8B",
                base_url="http://127.0.0.1:8000/v1",
                request_token_ids="auto",  # a server of one's own: asked whether it is vLLM
            ),
        ),
        ("openai:org@team/model", OpenAIConfig(model="org@team/model")),
        ("litellm:anthropic/claude-sonnet-4", LiteLLMConfig(model="anthropic/claude-sonnet-4")),
        (
            "litellm:hosted_vllm/tiny@http://127.0.0.1:8000/v1",
            LiteLLMConfig(model="hosted_vllm/tiny", api_base="http://127.0.0.1:8000/v1"),
        ),
        ("vllm:/models/tiny", VLLMConfig(model_path="/models/tiny")),
        ("hf:./models/tiny", TransformersConfig(path="./models/tiny")),
        ("scripted:replies.yaml", ScriptedConfig(path="replies.yaml")),
    ],
)
def test_short_forms(spec, expected):
    assert parse_backend_spec(spec) == expected


@pytest.mark.parametrize(
    "spec, problem",
    [
        ("gpt-4o", "not a known backend kind"),
        ("anthropic:claude", "not a known backend kind"),
        ("openai:", "'openai' needs an argument"),
        ("gold:extra", "not a known backend kind"),
    ],
)
def test_bad_short_forms_list_the_valid_ones(spec, problem):
    with pytest.raises(BackendConfigError) as caught:
        parse_backend_spec(spec)
    message = str(caught.value)
    assert problem in message
    forms = ("openai:MODEL[@URL]", "litellm:MODEL[@URL]", "vllm:PATH", "hf:PATH", "scripted:FILE")
    for form in (*forms, "gold", "FILE.yaml"):
        assert form in message


CONFIGS = [
    OpenAIConfig(
        model="m",
        base_url="http://127.0.0.1:9/v1",
        retry=RetryPolicy(max_attempts=2),
        request_token_ids=True,
        extra_body={"chat_template_kwargs": {"enable_thinking": False}},
    ),
    LiteLLMConfig(model="openai/gpt-4o-mini", api_key_env="MY_KEY", max_retries=2),
    VLLMConfig(model_path="/models/tiny", extra_args=["--enforce-eager"]),
    TransformersConfig(path="/models/tiny", dtype="float32", max_context_tokens=2048),
    ScriptedConfig(replies=["a", "b"]),
    GoldConfig(),
]


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: c.type)
def test_yaml_round_trip_and_spec_by_file(config, tmp_path):
    path = tmp_path / "backend.yaml"
    text = dump_backend_config(config, path)
    assert f"type: {config.type}" in text
    assert load_backend_config(path) == config
    assert parse_backend_spec(str(path)) == config
    as_json = tmp_path / "backend.json"
    as_json.write_text(json.dumps(config.model_dump(mode="json")))
    assert parse_backend_spec(str(as_json)) == config


def test_config_file_errors_are_clear(tmp_path):
    with pytest.raises(BackendConfigError, match="Cannot read the backend config"):
        load_backend_config(tmp_path / "missing.yaml")
    no_type = tmp_path / "no_type.yaml"
    no_type.write_text("model: m\n")
    with pytest.raises(
        BackendConfigError, match="'type' field .*gold, hf, litellm, openai, scripted, vllm"
    ):
        load_backend_config(no_type)
    typo = tmp_path / "typo.yaml"
    typo.write_text("type: openai\nmodel: m\nbase_ulr: http://x\n")
    with pytest.raises(
        BackendConfigError, match="unknown key 'base_ulr' \\(did you mean 'base_url'\\?\\)"
    ):
        load_backend_config(typo)
    both = tmp_path / "both.yaml"
    both.write_text("type: scripted\nreplies: [a]\npath: r.yaml\n")
    with pytest.raises(BackendConfigError, match="exactly one of 'replies' and 'path'"):
        load_backend_config(both)


async def test_build_scripted_from_a_file_and_inline(tmp_path):
    replies = tmp_path / "replies.yaml"
    replies.write_text("- first\n- second\n")
    backend = build_backend(parse_backend_spec(f"scripted:{replies}"))
    assert isinstance(backend, ScriptedBackend)
    assert (await backend.complete([Message(role="user", content="x")], [])).text == "first"
    inline = build_backend(ScriptedConfig(replies=["only"]))
    assert (await inline.complete([], [])).text == "only"
    replies.write_text("not: a list\n")
    with pytest.raises(BackendConfigError, match="must hold a list of reply strings"):
        build_backend(ScriptedConfig(path=str(replies)))


def test_build_gold_needs_the_task_and_the_scaffold():
    with pytest.raises(BackendConfigError) as caught:
        build_backend(GoldConfig())
    assert "task, call_format, tools, submit_sentinel" in str(caught.value)
    task = Task(instance_id="t", problem_statement="p", patch="diff --git a/x b/x\n")
    backend = build_backend(
        GoldConfig(),
        task=task,
        call_format="bash_block",
        tools=[get_tool("bash")],
        submit_sentinel="DONE",
    )
    assert isinstance(backend, GoldBackend)
    assert backend.format is not None and type(backend.format) is type(get_format("bash_block"))
    with pytest.raises(BackendConfigError, match="no reference patch"):
        build_backend(
            GoldConfig(),
            task=task.model_copy(update={"patch": ""}),
            call_format="bash_block",
            tools=[get_tool("bash")],
            submit_sentinel="DONE",
        )


async def test_build_the_model_backends_without_loading_anything():
    backend = build_backend(parse_backend_spec("openai:m@http://127.0.0.1:9/v1"))
    assert isinstance(backend, OpenAIBackend)
    assert backend.describe()["base_url"] == "http://127.0.0.1:9/v1"
    await close_backend(backend)
    vllm = build_backend(VLLMConfig(model_path="/models/tiny", env={"HF_TOKEN": "secret"}))
    assert isinstance(vllm, VLLMBackend)
    assert "secret" not in json.dumps(vllm.describe())
    await close_backend(vllm)  # never started: nothing to stop
    local = build_backend(parse_backend_spec("hf:/models/tiny"))
    assert isinstance(local, TransformersBackend)  # the model loads on first use
    lite = build_backend(parse_backend_spec("litellm:openai/m@http://127.0.0.1:9/v1"))
    assert isinstance(lite, LiteLLMBackend)
    await close_backend(lite)


def test_importing_backends_does_not_import_client_libraries():
    code = (
        "import sys, agentkit.backends, agentkit.backends.registry; "
        "print([m for m in ('openai', 'litellm', 'torch', 'transformers') if m in sys.modules])"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


STAND_IN_API_SERVER = '''
"""Stand-in for vllm.entrypoints.openai.api_server (tests only): health, models, one reply."""
import json, sys
from http.server import BaseHTTPRequestHandler, HTTPServer

args = sys.argv[1:]
port = int(args[args.index("--port") + 1])
name = args[args.index("--model") + 1]

class Handler(BaseHTTPRequestHandler):
    def _send(self, payload):
        body = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        self._send({} if self.path == "/health" else {"object": "list", "data": [{"id": name}]})

    def do_POST(self):
        request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self._send({
            "id": "x", "object": "chat.completion", "created": 1, "model": request["model"],
            "prompt_token_ids": [1, 2, 3],
            "choices": [{
                "index": 0, "finish_reason": "stop", "token_ids": [9],
                "message": {"role": "assistant", "content": json.dumps(request)},
                "logprobs": {"content": [{"token": "a", "logprob": -0.25, "top_logprobs": []}]},
            }],
            "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
        })

    def log_message(self, *args):
        return None

HTTPServer(("127.0.0.1", port), Handler).serve_forever()
'''


async def test_vllm_backend_starts_its_server_on_first_use_and_stops_it_on_close(tmp_path):
    """The server is a stand-in ``vllm`` package (a fake, named as such: a real vLLM server takes
    a minute to start and is not installed here); the manager, the process and HTTP are real."""
    package = tmp_path / "fake" / "vllm" / "entrypoints" / "openai"
    package.mkdir(parents=True)
    for folder in (package.parent.parent, package.parent, package):
        (folder / "__init__.py").write_text("")
    (package / "api_server.py").write_text(STAND_IN_API_SERVER)
    (tmp_path / "model").mkdir()
    config = VLLMConfig(
        model_path=str(tmp_path / "model"),
        python=sys.executable,
        env={"PYTHONPATH": str(tmp_path / "fake")},
        log_path=str(tmp_path / "server.log"),
        startup_timeout_s=60,
    )
    backend = build_backend(config)
    assert isinstance(backend, VLLMBackend)
    completion = await backend.complete([Message(role="user", content="hi")], [])
    server = backend._server
    assert server is not None and server.running
    sent = json.loads(completion.text)
    assert sent["model"] == str(tmp_path / "model")
    assert sent["logprobs"] is True and sent["return_token_ids"] is True
    assert (completion.prompt_token_ids, completion.completion_token_ids) == ([1, 2, 3], [9])
    assert completion.logprobs == [-0.25]
    await close_backend(backend)
    assert not server.running
