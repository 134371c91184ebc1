"""Latency and throughput of `vla-rl serve` on loopback: p50/p99 per request and requests/s with 1, 4
and 16 concurrent clients (one connection each, like robots), with a tiny OpenVLA-style policy.

The server runs as its own process (`python -m vla_rl.cli.serve`, the real command); the clients are
threads of this process speaking the protocol with `vla_rl.serve.PolicyClient`. Request counts and
time per level are bounded. Prints a table and writes JSON (--out).

    .venv/bin/python tools/bench_serve.py --out bench_serve.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clients", type=int, nargs="+", default=[1, 4, 16], help="concurrency levels")
    p.add_argument("--requests", type=int, default=40, help="timed requests per client per level")
    p.add_argument("--warmup", type=int, default=3, help="untimed requests per client first")
    p.add_argument("--image-size", type=int, default=224, help="side of the square request image (LIBERO clients send 224)")
    p.add_argument("--batch-window-ms", type=float, default=5.0)
    p.add_argument("--max-batch-size", type=int, default=16)
    p.add_argument("--threads", type=int, default=1, help="torch threads of the server")
    p.add_argument("--level-timeout-s", type=float, default=120.0, help="a level stops sending after this long")
    p.add_argument("--out", default=None, help="write the results here as JSON")
    return p.parse_args(argv)


def build_checkpoint(root: Path) -> Path:
    import torch

    from vla_rl.config.model import ModelConfig
    from vla_rl.models.registry import build_policy

    torch.set_num_threads(1)
    policy = build_policy(ModelConfig(family="openvla", size="tiny"), action_dim=7, cameras=("main",), proprio_dim=9, seed=0)
    policy.save_pretrained(str(root / "policy"))
    return root


def start_server(checkpoint: Path, args: argparse.Namespace) -> tuple[subprocess.Popen, str]:
    cmd = [sys.executable, "-m", "vla_rl.cli.serve", str(checkpoint), "--port", "0", "--threads", str(args.threads),
           "--batch-window-ms", str(args.batch_window_ms), "--max-batch-size", str(args.max_batch_size),
           "--log-level", "WARNING"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert proc.stdout is not None
    for line in proc.stdout:
        if "listening on ws://" in line:
            return proc, line.split("listening on ")[1].split()[0]
    proc.wait()
    raise RuntimeError(f"server exited with code {proc.returncode} before listening")


def request(seed: int, size: int) -> dict:
    rng = np.random.default_rng(seed)
    return {"observation/image": rng.integers(0, 256, (size, size, 3), dtype=np.uint8),
            "observation/state": rng.standard_normal(9).astype(np.float32), "prompt": "pick up the red cube"}


def run_level(uri: str, clients: int, args: argparse.Namespace) -> dict:
    from vla_rl.serve import PolicyClient

    latencies: list[list[float]] = [[] for _ in range(clients)]
    batch_sizes: list[float] = []
    errors: list[str] = []
    deadline = time.perf_counter() + args.level_timeout_s
    barrier = threading.Barrier(clients + 1)

    def worker(i: int) -> None:
        try:
            with PolicyClient(uri) as client:
                req = request(i, args.image_size)
                for _ in range(args.warmup):
                    client.infer(req)
                barrier.wait()
                for _ in range(args.requests):
                    if time.perf_counter() > deadline:
                        break
                    start = time.perf_counter()
                    answer = client.infer(req)
                    latencies[i].append(1000 * (time.perf_counter() - start))
                    batch_sizes.append(answer["server_timing"]["batch_size"])
        except Exception as exc:  # noqa: BLE001 - reported in the table
            errors.append(f"{type(exc).__name__}: {exc}")
            barrier.abort()

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(clients)]
    for t in threads:
        t.start()
    try:
        barrier.wait(timeout=args.level_timeout_s)
    except threading.BrokenBarrierError:
        pass
    start = time.perf_counter()
    for t in threads:
        t.join(timeout=args.level_timeout_s + 30)
    wall = time.perf_counter() - start
    flat = np.array([x for per in latencies for x in per])
    return {
        "clients": clients, "requests": int(flat.size), "seconds": wall,
        "requests_per_s": flat.size / wall if wall > 0 else 0.0,
        "p50_ms": float(np.percentile(flat, 50)) if flat.size else None,
        "p99_ms": float(np.percentile(flat, 99)) if flat.size else None,
        "mean_batch": float(np.mean(batch_sizes)) if batch_sizes else None,
        "errors": errors[:5],
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = build_checkpoint(Path(tmp))
        proc, uri = start_server(checkpoint, args)
        try:
            results = [run_level(uri, c, args) for c in args.clients]
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    print(f"\nvla-rl serve on {uri} (loopback), tiny openvla policy, {args.image_size}px image, "
          f"window {args.batch_window_ms} ms, max batch {args.max_batch_size}, {args.threads} torch thread(s)")
    print(f"{'clients':>8} {'requests':>9} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'mean batch':>11}")
    for r in results:
        fmt = lambda v, spec: format(v, spec) if v is not None else "-"  # noqa: E731
        print(f"{r['clients']:>8} {r['requests']:>9} {r['requests_per_s']:>8.1f} {fmt(r['p50_ms'], '>8.1f')} "
              f"{fmt(r['p99_ms'], '>8.1f')} {fmt(r['mean_batch'], '>11.2f')}" + (f"  errors: {r['errors']}" if r["errors"] else ""))
    record = {"tool": "bench_serve", "args": vars(args), "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
              "platform": platform.platform()}, "results": results}
    if args.out:
        Path(args.out).write_text(json.dumps(record, indent=2) + "\n")
        print(f"wrote {args.out}")
    return 0 if all(not r["errors"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
