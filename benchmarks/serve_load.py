"""Serving load test on loopback: dynamic batching vs one request at a time, same encoder, same requests.

Starts two `gensearch serve` processes (one with --max-batch-size N, one with --max-batch-size 1), then
alternates rounds between them: each round sends R requests (one query-length text each) from C concurrent
httpx clients and records per-request latency. Reports throughput (requests/s), the batched/unbatched
ratio, p50/p95 latency, the servers' mean batch size, and errors (must be 0; exit 1 otherwise); as a
reference, the same texts encoded in-process (no HTTP) in batches of C.
Alternating rounds and taking medians damps noise from other jobs on the machine.

    .venv/bin/python benchmarks/serve_load.py [--encoder test] [--requests 200] [--concurrency 8] [--rounds 3]
    .venv/bin/python benchmarks/serve_load.py --url http://127.0.0.1:8000   # load-test one running server
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import httpx
import torch

from encoder import load_encoder

ROOT = Path(__file__).resolve().parent.parent
WORDS = (
    "how do I read write sort filter a list dict file socket thread process in python with without error "
    "exception import module class function return value string bytes encode decode query index vector"
).split()


def make_queries(n: int, seed: int = 0) -> list[str]:
    """Deterministic query-like texts of 4 to 24 words."""
    rng = random.Random(seed)
    return [" ".join(rng.choices(WORDS, k=rng.randint(4, 24))) + "?" for _ in range(n)]


@dataclass
class RoundResult:
    seconds: float
    latencies: list[float]
    errors: list[str]


async def load_round(url: str, texts: list[str], concurrency: int, task: str = "query") -> RoundResult:
    """Send one request per text from ``concurrency`` clients; latency per request, wall time, errors."""
    queue: asyncio.Queue[str] = asyncio.Queue()
    for text in texts:
        queue.put_nowait(text)
    latencies: list[float] = []
    errors: list[str] = []
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    async with httpx.AsyncClient(base_url=url, timeout=300, limits=limits) as client:

        async def worker() -> None:
            while not queue.empty():
                text = queue.get_nowait()
                start = time.perf_counter()
                try:
                    response = await client.post("/v1/embeddings", json={"input": text, "task": task})
                    if response.status_code != 200 or len(response.json()["data"]) != 1:
                        errors.append(f"{response.status_code}: {response.text[:200]}")
                except httpx.HTTPError as exc:
                    errors.append(repr(exc))
                latencies.append(time.perf_counter() - start)

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return RoundResult(time.perf_counter() - start, latencies, errors)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(stack: ExitStack, encoder: str, max_batch_size: int, args: argparse.Namespace, log_dir: Path) -> str:
    """Launch `gensearch serve` in a subprocess; return its URL once /health answers."""
    port = free_port()
    log_path = log_dir / f"serve-batch{max_batch_size}.log"
    log = stack.enter_context(open(log_path, "w"))
    cmd = [sys.executable, "-m", "app.cli", "serve", "--encoder", encoder, "--port", str(port),
           "--max-batch-size", str(max_batch_size), "--max-wait-ms", str(args.max_wait_ms), "--max-queue", "4096"]
    if args.torch_threads:
        cmd += ["--torch-threads", str(args.torch_threads)]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    stack.callback(lambda: (proc.terminate(), proc.wait(timeout=30)))
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited ({proc.returncode}); see {log_path}")
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return url
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"server did not come up in 600 s; see {log_path}")


def health(url: str) -> dict:
    return httpx.get(f"{url}/health", timeout=10).json()


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


def summarise(name: str, rounds: list[RoundResult], n_requests: int, batches: int) -> dict:
    """Median throughput over rounds; latency percentiles over every request of every round."""
    latencies = [x for r in rounds for x in r.latencies]
    summary = {
        "name": name,
        "rps": statistics.median(n_requests / r.seconds for r in rounds),
        "p50_ms": 1000 * percentile(latencies, 50),
        "p95_ms": 1000 * percentile(latencies, 95),
        "errors": sum(len(r.errors) for r in rounds),
        "mean_batch": n_requests * len(rounds) / batches if batches else float("nan"),
    }
    print(f"{name:22s} {summary['rps']:8.1f} req/s   p50 {summary['p50_ms']:7.1f} ms   p95 {summary['p95_ms']:7.1f} ms"
          f"   mean batch {summary['mean_batch']:5.2f}   errors {summary['errors']}")
    for r in rounds:
        for error in r.errors[:3]:
            print(f"    error: {error}")
    return summary


def run_config(url: str, texts: list[str], args: argparse.Namespace, rounds: list[RoundResult]) -> int:
    """One measured round against ``url``; returns how many batches the server ran for it."""
    before = health(url)["batches"]
    rounds.append(asyncio.run(load_round(url, texts, args.concurrency)))
    return health(url)["batches"] - before


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--encoder", default="test", help="what `gensearch serve --encoder` loads (test = SmolLM2-135M)")
    parser.add_argument("--requests", type=int, default=200, help="requests per round")
    parser.add_argument("--concurrency", type=int, default=8, help="concurrent clients")
    parser.add_argument("--rounds", type=int, default=3, help="measured rounds per configuration")
    parser.add_argument("--max-batch-size", type=int, default=32)
    parser.add_argument("--max-wait-ms", type=float, default=5.0)
    parser.add_argument("--torch-threads", type=int, help="torch CPU threads for the servers and the reference")
    parser.add_argument("--url", help="load-test this running server only (no comparison)")
    args = parser.parse_args()
    texts = make_queries(args.requests)
    warmup = make_queries(2 * args.concurrency, seed=1)

    print(f"{args.requests} requests x {args.rounds} rounds, {args.concurrency} concurrent clients, 1 text per request, "
          f"torch threads {args.torch_threads or 'default'}; load {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs before start")
    with ExitStack() as stack:
        if args.url:
            configs = {"server": args.url}
        else:
            log_dir = Path(tempfile.mkdtemp(prefix="serve_load_"))  # server logs, kept for inspection
            configs = {
                f"batched (max {args.max_batch_size})": start_server(stack, args.encoder, args.max_batch_size, args, log_dir),
                "one at a time (max 1)": start_server(stack, args.encoder, 1, args, log_dir),
            }
        for url in configs.values():
            asyncio.run(load_round(url, warmup, args.concurrency))  # warm-up, not measured
        if args.torch_threads:
            torch.set_num_threads(args.torch_threads)
        encoder = None if args.url else load_encoder(args.encoder)  # in-process reference, no HTTP
        results = {name: [] for name in configs}
        batches = dict.fromkeys(configs, 0)
        reference: list[float] = []
        for _ in range(args.rounds):  # alternate so background load hits every configuration alike
            for name, url in configs.items():
                batches[name] += run_config(url, texts, args, results[name])
            if encoder is not None:
                start = time.perf_counter()
                encoder.encode(texts, task="query", batch_size=args.concurrency, show_progress_bar=False)
                reference.append(args.requests / (time.perf_counter() - start))
        print(f"encoder: {health(next(iter(configs.values())))['model']} ({args.encoder}); "
              f"load {os.getloadavg()[0]:.1f} after")
        summaries = [summarise(name, results[name], args.requests, batches[name]) for name in configs]

    if len(summaries) == 2:
        print(f"throughput ratio batched / one-at-a-time: {summaries[0]['rps'] / summaries[1]['rps']:.2f}x")
    if reference:
        rate = statistics.median(reference)
        print(f"in-process encode(batch_size={args.concurrency}), no HTTP: {rate:.1f} texts/s "
              f"(batched server reaches {summaries[0]['rps'] / rate:.0%} of it)")
    if any(s["errors"] for s in summaries):
        sys.exit(1)


if __name__ == "__main__":
    main()
