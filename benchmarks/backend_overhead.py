"""Client overhead per model call: each agentkit backend against a raw HTTP call to the same server.

Why this benchmark exists: an RL rollout or an evaluation makes hundreds of thousands of model
calls, and with a small fast model served locally the client's own work (building the request,
the HTTP client, parsing the reply into a :class:`Completion`) can become a visible share of a
call. The budget is at most 5 ms per call over a raw HTTP request.

What is measured: the wall time of ``--calls`` sequential calls, divided by their number, for
each row; rows run in interleaved rounds (after a warm-up round) so that load from other
processes hits them alike, and the table shows the median round. All rows send the same
conversation (a system and a user message, ``max_tokens=1``) to the same server.

* **raw HTTP**: ``httpx.AsyncClient`` (keep-alive) posting the request JSON and decoding the reply
  JSON: the floor any Python client pays.
* **openai SDK**: ``AsyncOpenAI.chat.completions.create`` with the same request, for reference.
* **agentkit OpenAIBackend**: ``complete()`` (request building, the SDK, retries wrapper, reply
  parsing). ``--token-ids`` also asks for token ids and logprobs (a vLLM server needs that flag).
* **agentkit LiteLLMBackend**: ``complete()`` through litellm's ``openai/`` provider, when that
  backend is installed.

By default the server is a local stub started in a separate process that answers every request
at once with a fixed reply, so the figures measure client overhead alone. With
``--base-url URL --model NAME`` it is any OpenAI-compatible server (a vLLM server in practice);
the overhead column is then still each row minus the raw row, but generation time adds noise.

Run: ``python benchmarks/backend_overhead.py [--calls 300] [--repeats 5] [--base-url URL --model M]``.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from agentkit.backends import OpenAIBackend, OpenAIConfig  # noqa: E402
from agentkit.types import Message, SamplingParams  # noqa: E402

MESSAGES = [
    Message(role="system", content="You are a helpful assistant. " * 20),
    Message(role="user", content="List the files in the repository and explain the layout."),
]
PARAMS = SamplingParams(max_tokens=1, temperature=0.0)

STUB_REPLY = {
    "id": "chatcmpl-bench",
    "object": "chat.completion",
    "created": 1,
    "model": "stub",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "Sure."},
            "finish_reason": "stop",
            "token_ids": [42],
            "logprobs": {
                "content": [{"token": "Sure", "logprob": -0.5, "bytes": None, "top_logprobs": []}]
            },
        }
    ],
    "prompt_token_ids": list(range(120)),
    "usage": {"prompt_tokens": 120, "completion_tokens": 1, "total_tokens": 121},
}


def serve_stub() -> None:
    """The stub server (run in a child process): prints its port, answers until killed."""
    from aiohttp import web

    body = json.dumps(STUB_REPLY).encode()

    async def handle(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(body=body, content_type="application/json")

    async def main() -> None:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        print(site._server.sockets[0].getsockname()[1], flush=True)  # type: ignore[union-attr]
        await asyncio.Event().wait()

    asyncio.run(main())


Call = Callable[[], Awaitable[Any]]


async def make_rows(args: argparse.Namespace) -> tuple[dict[str, Call], list[str], list[Any]]:
    """The calls to time, notes for rows that could not be built, and clients to close."""
    import httpx
    from openai import AsyncOpenAI

    backend = OpenAIBackend(
        OpenAIConfig(model=args.model, base_url=args.base_url, request_token_ids=args.token_ids)
    )
    request = backend.build_request(MESSAGES, [], PARAMS)
    raw_json = {k: v for k, v in request.items() if k != "extra_body"}
    raw_json.update(request.get("extra_body", {}))
    http = httpx.AsyncClient(timeout=600)
    sdk = AsyncOpenAI(api_key="EMPTY", base_url=args.base_url, max_retries=0, timeout=600)
    url = args.base_url.rstrip("/") + "/chat/completions"

    async def raw() -> Any:
        response = await http.post(url, json=raw_json, headers={"Authorization": "Bearer EMPTY"})
        response.raise_for_status()
        return response.json()

    rows: dict[str, Call] = {
        "raw HTTP (httpx)": raw,
        "openai SDK": lambda: sdk.chat.completions.create(**request),
        "agentkit OpenAIBackend": lambda: backend.complete(MESSAGES, [], PARAMS),
    }
    notes: list[str] = []
    closers: list[Any] = [http.aclose, sdk.close, backend.aclose]
    try:
        from agentkit.backends.litellm_backend import LiteLLMBackend, LiteLLMConfig
    except ImportError as exc:
        notes.append(f"LiteLLMBackend row skipped: {exc}")
    else:
        os.environ.setdefault("AGENTKIT_BENCH_KEY", "EMPTY")  # litellm insists on some key
        lite = LiteLLMBackend(
            LiteLLMConfig(
                model=f"openai/{args.model}",
                api_base=args.base_url,
                api_key_env="AGENTKIT_BENCH_KEY",
            )
        )
        rows["agentkit LiteLLMBackend"] = lambda: lite.complete(MESSAGES, [], PARAMS)
        close = getattr(lite, "aclose", None)
        if close is not None:
            closers.append(close)
    return rows, notes, closers


async def time_row(call: Call, calls: int) -> float:
    started = time.perf_counter()
    for _ in range(calls):
        await call()
    return (time.perf_counter() - started) / calls * 1000


async def measure(args: argparse.Namespace) -> tuple[dict[str, list[float]], list[str]]:
    rows, notes, closers = await make_rows(args)
    samples: dict[str, list[float]] = {name: [] for name in rows}
    try:
        for call in rows.values():  # warm-up: imports, connections, caches
            await time_row(call, min(args.calls, 20))
        for _ in range(args.repeats):
            for name, call in rows.items():
                samples[name].append(await time_row(call, args.calls))
    finally:
        for close in closers:
            await close()
    return samples, notes


def table(samples: dict[str, list[float]], args: argparse.Namespace, notes: list[str]) -> str:
    raw = statistics.median(samples["raw HTTP (httpx)"])
    server = args.base_url if args.external else "local stub (instant replies, separate process)"
    lines = [
        f"Backend client overhead, {datetime.date.today()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}; server: {server}; {args.calls} calls x "
        f"{args.repeats} rounds (median round){'; token ids requested' if args.token_ids else ''}",
        "",
        "| client | ms per call | overhead over raw HTTP (ms) | range over rounds (ms) |",
        "|---|---:|---:|---:|",
    ]
    for name, values in samples.items():
        median = statistics.median(values)
        over = "-" if name.startswith("raw") else f"{median - raw:+.2f}"
        spread = f"{min(values):.2f}-{max(values):.2f}"
        lines.append(f"| {name} | {median:.2f} | {over} | {spread} |")
    lines += [""] + [f"Note: {note}" for note in notes]
    return "\n".join(lines).rstrip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base-url", help="an OpenAI-compatible server (default: a local stub)")
    parser.add_argument("--model", default="stub", help="the model name to send")
    parser.add_argument("--calls", type=int, default=300, help="calls per row and round")
    parser.add_argument("--repeats", type=int, default=5, help="rounds")
    parser.add_argument("--token-ids", action="store_true", help="ask for token ids (vLLM)")
    parser.add_argument("--serve-stub", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_stub:
        serve_stub()
        return
    args.external = args.base_url is not None
    stub: subprocess.Popen[str] | None = None
    if not args.external:
        stub = subprocess.Popen(
            [sys.executable, __file__, "--serve-stub"], stdout=subprocess.PIPE, text=True
        )
        assert stub.stdout is not None
        args.base_url = f"http://127.0.0.1:{stub.stdout.readline().strip()}/v1"
    try:
        samples, notes = asyncio.run(measure(args))
    finally:
        if stub is not None:
            stub.terminate()
            stub.wait()
    print(table(samples, args, notes))


if __name__ == "__main__":
    main()
