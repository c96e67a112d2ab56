"""Backend configs by name: one discriminated union, short command-line forms, YAML files, and
:func:`build_backend`, which turns a config into a live backend.

A config is plain data (it round-trips through YAML and is recorded in trajectories); building is
where imports and resources happen, so every implementation is imported only when its config is
built: choosing the scripted backend never imports ``openai``, ``litellm`` or ``torch``.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

from agentkit.backend import Backend
from agentkit.backends.litellm_backend import LiteLLMConfig
from agentkit.backends.openai_backend import OpenAIBackend, OpenAIConfig
from agentkit.backends.transformers_backend import TransformersConfig
from agentkit.backends.vllm_server import VLLMConfig
from agentkit.errors import UserFacingError
from agentkit.tasks import Task
from agentkit.tools import CallFormat, Tool, get_format
from agentkit.types import Completion, Message, SamplingParams, ToolSpec
from agentkit.validation import describe_problems
from agentkit.yaml_files import read_yaml

if TYPE_CHECKING:
    from agentkit.backends.vllm_server import VLLMServer


class BackendConfigError(UserFacingError, ValueError):
    """A backend spec or config file that cannot be understood; the message lists what can."""


class ScriptedConfig(BaseModel):
    """Fixed replies, given inline or as a YAML/JSON file holding a list of strings."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["scripted"] = "scripted"
    replies: list[str] | None = None
    path: str | None = None

    @model_validator(mode="after")
    def _one_source(self) -> ScriptedConfig:
        if (self.replies is None) == (self.path is None):
            raise ValueError("a scripted backend needs exactly one of 'replies' and 'path'")
        return self


class GoldConfig(BaseModel):
    """Replays the task's reference patch: a sanity run of sandbox, tools and grader, not a model."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["gold"] = "gold"


BackendConfig = Annotated[
    OpenAIConfig | LiteLLMConfig | VLLMConfig | TransformersConfig | ScriptedConfig | GoldConfig,
    Field(discriminator="type"),
]
"""Any backend's config; the ``type`` field picks which."""

_ADAPTER: TypeAdapter[BackendConfig] = TypeAdapter(BackendConfig)

SPEC_FORMS = """\
  openai:MODEL[@URL]   an OpenAI-compatible server (URL like http://127.0.0.1:8000/v1; default OpenAI)
  litellm:MODEL[@URL]  any provider litellm knows (MODEL like openai/gpt-4o-mini; URL: its api_base)
  vllm:PATH            start a local vLLM server for the model directory PATH
  hf:PATH              a transformers model directory, run in this process
  scripted:FILE        replies from a YAML or JSON list of strings
  gold                 replay the task's reference patch (not a model)
  FILE.yaml|FILE.json  a backend config file (a mapping with a 'type' field)"""

_SPEC_KINDS = frozenset({"openai", "litellm", "vllm", "hf", "scripted"})
_CONFIG_SUFFIXES = (".yaml", ".yml", ".json")
_CONFIG_CLASSES: tuple[type[BaseModel], ...] = (
    OpenAIConfig,
    LiteLLMConfig,
    VLLMConfig,
    TransformersConfig,
    ScriptedConfig,
    GoldConfig,
)


# -- parsing ------------------------------------------------------------------------------------


def parse_backend_spec(spec: str) -> BackendConfig:
    """A config from its short form (see :data:`SPEC_FORMS`) or from a config file's path."""
    text = spec.strip()
    if text == "gold":
        return GoldConfig()
    kind, sep, argument = text.partition(":")
    argument = argument.strip()
    if not (sep and kind in _SPEC_KINDS) and text.lower().endswith(_CONFIG_SUFFIXES):
        return load_backend_config(text)
    if kind not in _SPEC_KINDS:
        raise _spec_error(spec, "not a known backend kind nor a .yaml/.json config file")
    if not argument:
        raise _spec_error(spec, f"{kind!r} needs an argument after the colon")
    if kind == "openai":
        model, url = _split_url(argument)
        # A server of one's own may be vLLM, whose token ids training needs: ask it (OpenAI's
        # own API has none, so it is not asked).
        token_ids = "auto" if url else False
        return _validated(
            spec,
            {"type": "openai", "model": model, "base_url": url, "request_token_ids": token_ids},
        )
    if kind == "litellm":
        model, url = _split_url(argument)
        return _validated(spec, {"type": "litellm", "model": model, "api_base": url})
    if kind == "vllm":
        return _validated(spec, {"type": "vllm", "model_path": argument})
    if kind == "hf":
        return _validated(spec, {"type": "hf", "path": argument})
    if kind == "scripted":
        return _validated(spec, {"type": "scripted", "path": argument})
    raise _spec_error(spec, f"no short form for {kind!r}")


def _split_url(argument: str) -> tuple[str, str | None]:
    """``MODEL@URL`` splits at the last ``@`` that starts a URL (model names may hold ``@``)."""
    model, sep, url = argument.rpartition("@")
    if sep and model and url.startswith(("http://", "https://")):
        return model, url
    return argument, None


def _validated(spec: str, data: dict[str, Any]) -> BackendConfig:
    try:
        return _ADAPTER.validate_python(data)
    except ValidationError as exc:
        raise _spec_error(spec, _first_problem(exc, data.get("type"))) from None


def _spec_error(spec: str, problem: str) -> BackendConfigError:
    return BackendConfigError(f"Cannot use backend {spec!r}: {problem}. Valid forms:\n{SPEC_FORMS}")


def _first_problem(exc: ValidationError, kind: object = None) -> str:
    """The problems of a config of type ``kind``, worded by :func:`describe_problems`."""
    model = next((c for c in _CONFIG_CLASSES if c.model_fields["type"].default == kind), None)
    # Pydantic puts the union member it picked (the ``type`` tag) in front of every key.
    return describe_problems(exc, model, leading_tags=backend_types())


# -- files --------------------------------------------------------------------------------------


def load_backend_config(path: str | Path) -> BackendConfig:
    """Read a config from a YAML or JSON file (JSON is YAML, so one reader serves both)."""
    source = Path(path)
    data = read_yaml(source, BackendConfigError, "backend config")
    if not isinstance(data, dict) or "type" not in data:
        raise BackendConfigError(
            f"{source} must hold a mapping with a 'type' field "
            f"(one of: {', '.join(backend_types())})."
        )
    try:
        return _ADAPTER.validate_python(data)
    except ValidationError as exc:
        raise BackendConfigError(f"{source}: {_first_problem(exc, data['type'])}.") from None


def dump_backend_config(config: BackendConfig, path: str | Path | None = None) -> str:
    """The config as YAML (every field, defaults included, so a file says what ran); also
    written to ``path`` when given."""
    data = _ADAPTER.dump_python(config, mode="json")
    text = yaml.safe_dump(data, sort_keys=False)
    if path is not None:
        Path(path).write_text(text, encoding="utf-8")
    return text


def backend_types() -> list[str]:
    """The ``type`` values a config may have."""
    return sorted(str(cls.model_fields["type"].default) for cls in _CONFIG_CLASSES)


# -- building -----------------------------------------------------------------------------------


def build_backend(
    config: BackendConfig,
    *,
    task: Task | None = None,
    call_format: CallFormat | str | None = None,
    tools: list[Tool] | None = None,
    submit_sentinel: str | None = None,
) -> Backend:
    """A live backend for ``config``. The keyword context is needed by ``gold`` only (it replays
    ``task``'s patch through the scaffold's ``call_format`` and ``tools``, then submits with
    ``submit_sentinel``). Release what it holds with :func:`close_backend`."""
    if isinstance(config, OpenAIConfig):
        return OpenAIBackend(config)
    if isinstance(config, LiteLLMConfig):
        from agentkit.backends.litellm_backend import LiteLLMBackend

        return LiteLLMBackend(config)
    if isinstance(config, VLLMConfig):
        return VLLMBackend(config)
    if isinstance(config, TransformersConfig):
        from agentkit.backends.transformers_backend import TransformersBackend

        return TransformersBackend(config)
    if isinstance(config, ScriptedConfig):
        from agentkit.backends.scripted import ScriptedBackend

        return ScriptedBackend(config.replies if config.replies is not None else _replies(config))
    if isinstance(config, GoldConfig):
        return _gold(task, call_format, tools, submit_sentinel)
    raise BackendConfigError(f"No backend implementation for config type {type(config).__name__}.")


async def close_backend(backend: Backend) -> None:
    """Release a backend's clients and servers (backends without any need nothing)."""
    close = getattr(backend, "aclose", None)
    if close is not None:
        await close()


def _replies(config: ScriptedConfig) -> list[str]:
    path = Path(str(config.path))
    replies = read_yaml(path, BackendConfigError, "scripted replies file")
    if not isinstance(replies, list) or not all(isinstance(r, str) for r in replies):
        raise BackendConfigError(f"{path} must hold a list of reply strings.")
    return replies


def _gold(
    task: Task | None,
    call_format: CallFormat | str | None,
    tools: list[Tool] | None,
    submit_sentinel: str | None,
) -> Backend:
    from agentkit.backends.gold import GoldBackend

    missing = [
        name
        for name, value in (
            ("task", task),
            ("call_format", call_format),
            ("tools", tools),
            ("submit_sentinel", submit_sentinel),
        )
        if value is None
    ]
    if missing or task is None or tools is None or call_format is None or submit_sentinel is None:
        raise BackendConfigError(
            "The gold backend replays a task's reference patch through the scaffold, so "
            f"build_backend needs {', '.join(missing)} for it (pass them as keywords)."
        )
    if not task.patch.strip():
        raise BackendConfigError(f"{task.instance_id} has no reference patch to replay.")
    fmt = get_format(call_format) if isinstance(call_format, str) else call_format
    return GoldBackend(task.patch, fmt, tools, submit_sentinel)


# -- vLLM: a server this backend owns plus the OpenAI backend that talks to it ------------------


class VLLMBackend:
    """Starts a vLLM server on first use (or on :meth:`start`), talks to it through
    :class:`OpenAIBackend` with token ids and logprobs requested, and stops it on :meth:`aclose`.

    Start-up failures raise the server manager's own errors (a missing vLLM, a crash with the end
    of its log, a timeout): they are the user's to fix, not something a retry could cure.
    """

    has_prices = False
    """A local model: every call costs 0 (so a scaffold's cost limit never triggers)."""

    def __init__(self, config: VLLMConfig) -> None:
        self.config = config
        self._server: VLLMServer | None = None
        self._starting: VLLMServer | None = None
        self._client: OpenAIBackend | None = None
        self._lock = asyncio.Lock()

    @property
    def log_path(self) -> Path | None:
        """The server's log, once a start began (for progress messages while it starts)."""
        server = self._server or self._starting
        return server.log_path if server is not None else None

    async def start(self) -> OpenAIBackend:
        """Start the server (once; concurrent callers wait for the same start-up)."""
        async with self._lock:
            if self._client is None:
                from agentkit.backends.vllm_server import VLLMServer

                server = self._starting = VLLMServer(self.config)
                await server.start()
                self._server = server
                self._client = OpenAIBackend(
                    OpenAIConfig(
                        model=server.model_name,
                        base_url=server.base_url,
                        request_token_ids=True,
                        timeout_s=self.config.request_timeout_s,
                        retry=self.config.retry,
                    )
                )
            return self._client

    async def complete(
        self,
        messages: list[Message],
        tools: list[ToolSpec],
        params: SamplingParams | None = None,
    ) -> Completion:
        client = self._client or await self.start()
        return await client.complete(messages, tools, params)

    async def aclose(self) -> None:
        async with self._lock:
            client, server = self._client, self._server
            self._client = self._server = None
            if client is not None:
                await client.aclose()
            if server is not None:
                await server.stop()

    def describe(self) -> dict[str, Any]:
        data = self.config.model_dump(mode="json")
        data.pop("env", None)  # may carry tokens; the rest says what was served
        return data
