"""Cost of one trivial command (`true`) through each way of running commands in a sandbox.

Compares, on the same container: the DockerRuntime persistent shell (one `docker exec -i … bash`
kept open, a sentinel per command) against one `docker exec CONTAINER true` subprocess per command;
and the LocalRuntime persistent shell on the host. Prints a markdown table.

    python benchmarks/sandbox_roundtrip.py [--n 500] [--image agentkit-base:bookworm]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import os
import platform
import subprocess
import time

from agentkit.runtime import DockerRuntime, LocalRuntime, docker_available


async def time_runtime(rt: DockerRuntime | LocalRuntime, n: int) -> float:
    for _ in range(20):  # warm-up
        await rt.run("true")
    start = time.perf_counter()
    for _ in range(n):
        result = await rt.run("true")
        assert result.exit_code == 0, result
    return time.perf_counter() - start


def time_docker_exec(container_id: str, n: int) -> float:
    for _ in range(3):
        subprocess.run(["docker", "exec", container_id, "true"], check=True)
    start = time.perf_counter()
    for _ in range(n):
        subprocess.run(["docker", "exec", container_id, "true"], check=True)
    return time.perf_counter() - start


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument("--image", default="agentkit-base:bookworm")
    args = parser.parse_args()
    problem = docker_available()
    if problem:
        raise SystemExit(problem)
    rows: list[tuple[str, float]] = []
    async with DockerRuntime(args.image) as rt:
        rows.append(("DockerRuntime persistent shell", await time_runtime(rt, args.n)))
        assert rt.container_id is not None
        exec_total = await asyncio.to_thread(time_docker_exec, rt.container_id, args.n)
        rows.append(("`docker exec CONTAINER true` per command", exec_total))
    async with LocalRuntime() as local:
        rows.append(("LocalRuntime persistent shell", await time_runtime(local, args.n)))

    print(
        f"{datetime.date.today().isoformat()}, {platform.node()} ({os.cpu_count()} cores, "
        f"{platform.system()} {platform.release()}), {args.n} × `true`, image {args.image}\n"
    )
    print("| runner | total (s) | ms per command | vs `docker exec` |")
    print("|---|---:|---:|---:|")
    for name, total in rows:
        ratio = f"{total / exec_total:.4f}× ({exec_total / total:.0f}× faster)"
        print(f"| {name} | {total:.3f} | {total / args.n * 1000:.3f} | {ratio} |")


if __name__ == "__main__":
    asyncio.run(main())
