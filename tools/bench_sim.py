"""Benchmark simulator backends: build, reset, step and chunk_step throughput, as a table and JSON.

Each combination of --task, --image-size and --num-envs (with --num-workers) builds one vectorised
env, resets it, runs --steps single steps and --steps/--chunk chunks of --chunk actions (random
actions in the backend's range, auto-reset on), and reports env-steps per second (all envs
together). Rows that differ from the published render settings (`--mesh-detail` < 1, `--multisample off`)
also report `img_diff`: the mean absolute difference (grey levels, all cameras) of their first
observation from the same reset id's under the published settings, which the command then also runs.
Examples:

    python tools/bench_sim.py --backend maniskill --task PickCube-v1 PushCube-v1 \
        --image-size 64 128 --num-envs 1 2 4 --steps 40 --out bench_sim.json
    python tools/bench_sim.py --task PushCube-v1 --image-size 64 --mesh-detail 1.0 0.1 --num-envs 1 2
    python tools/bench_sim.py --backend libero --task libero_spatial/0 --cameras main wrist \
        --mesh-detail 1.0 0.25 --multisample on off --num-envs 1 --steps 24
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import fields
from itertools import product
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from simulators import make_env  # noqa: E402
from vla_rl.config.env import EnvConfig  # noqa: E402

COLUMNS = ("backend", "task", "image", "detail", "msaa", "cameras", "envs", "workers", "build_s", "reset_s", "step_sps",
           "chunk_sps", "img_diff")
PUBLISHED = {"mesh_detail": 1.0, "multisample": True}
"""Render settings of the published scenes (the defaults)."""


def bench_one(cfg: EnvConfig, steps: int, chunk: int, seed: int) -> tuple[dict, dict]:
    """Time one configuration; returns one row of the table and the first observation's images."""
    t0 = time.perf_counter()
    env = make_env(cfg)
    try:
        build_s = time.perf_counter() - t0
        low, high = np.array(env.spec.action_low or -1.0), np.array(env.spec.action_high or 1.0)
        rng = np.random.default_rng(seed)
        n, a = env.num_envs, env.spec.action_dim
        t0 = time.perf_counter()
        first = env.reset()["images"]
        reset_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        for _ in range(steps):
            env.step(rng.uniform(low, high, size=(n, a)).astype(np.float32) * 0.3)
        step_sps = n * steps / (time.perf_counter() - t0)
        n_chunks = max(1, steps // chunk)
        t0 = time.perf_counter()
        executed = 0
        for _ in range(n_chunks):
            res = env.chunk_step(rng.uniform(low, high, size=(n, chunk, a)).astype(np.float32) * 0.3)
            executed += int(res.info["executed"].sum())
        chunk_sps = executed / (time.perf_counter() - t0)
        return {
            "backend": cfg.backend,
            "task": cfg.task,
            "image": cfg.image_size,
            "detail": getattr(cfg, "mesh_detail", 1.0),
            "msaa": "on" if getattr(cfg, "multisample", True) else "off",  # (LIBERO only)
            "cameras": "+".join(cfg.cameras),
            "envs": n,
            "workers": env.spec.extras.get("num_workers"),
            "build_s": round(build_s, 1),
            "reset_s": round(reset_s, 2),
            "step_sps": round(step_sps, 1),
            "chunk_sps": round(chunk_sps, 1),
            "chunk": chunk,
            "steps": steps,
            "worker_restarts": getattr(env, "worker_restarts", 0),
            "img_diff": "",
        }, first
    finally:
        env.close()


def print_table(rows: list[dict]) -> None:
    widths = {c: max(len(c), *(len(str(r[c])) for r in rows)) for c in COLUMNS}
    print("  ".join(c.ljust(widths[c]) for c in COLUMNS))
    for r in rows:
        print("  ".join(str(r[c]).ljust(widths[c]) for c in COLUMNS))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--backend", default="maniskill", help="registered backend name")
    p.add_argument("--task", nargs="+", default=["PickCube-v1"], help="task ids")
    p.add_argument("--image-size", nargs="+", type=int, default=[128], help="square image sizes")
    p.add_argument("--num-envs", nargs="+", type=int, default=[1, 2], help="numbers of envs")
    p.add_argument("--mesh-detail", nargs="+", type=float, default=[1.0],
                   help="env.mesh_detail values (ManiSkill, LIBERO), e.g. 1.0 0.1")
    p.add_argument("--multisample", nargs="+", choices=("on", "off"), default=["on"],
                   help="env.multisample values (LIBERO's 4x anti-aliasing), e.g. on off")
    p.add_argument("--image-protocol", default="raw", help="env.image_protocol (LIBERO: raw or openvla)")
    p.add_argument("--num-workers", type=int, default=None, help="worker processes (default: backend's choice)")
    p.add_argument("--cameras", nargs="+", default=["main"], help="cameras: main and/or wrist")
    p.add_argument("--steps", type=int, default=40, help="single steps per configuration")
    p.add_argument("--chunk", type=int, default=8, help="actions per chunk_step")
    p.add_argument("--settle-steps", type=int, default=10, help="LIBERO settle steps after reset")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="write the rows as JSON here")
    args = p.parse_args()

    def config(task: str, size: int, n: int, render: dict) -> EnvConfig:
        workers = None if args.num_workers is None else min(args.num_workers, n)
        # Backend-specific flags go to the backends whose env section has them; one set for another is refused.
        keys = {f.name for f in fields(EnvConfig.choice_class(args.backend))}
        wanted = {**render, "settle_steps": args.settle_steps, "image_protocol": args.image_protocol}
        defaults = {**PUBLISHED, "settle_steps": 10, "image_protocol": "raw"}
        options = {k: v for k, v in wanted.items() if k in keys or v != defaults[k]}
        return EnvConfig(backend=args.backend, task=task, image_size=size, num_envs=n, num_workers=workers,
                         cameras=tuple(args.cameras), seed=args.seed, **options)

    rows, published_frames = [], {}
    for task, size, detail, ms, n in product(args.task, args.image_size, args.mesh_detail, args.multisample, args.num_envs):
        render = {"mesh_detail": detail, "multisample": ms == "on"}
        print(f"[bench_sim] {args.backend} {task} {size}px detail={detail} multisample={ms} envs={n} ...",
              file=sys.stderr, flush=True)
        row, first = bench_one(config(task, size, n, render), args.steps, args.chunk, args.seed)
        rows.append(row)
        if render == PUBLISHED:
            published_frames.setdefault((task, size), first)
        else:
            if (task, size) not in published_frames:  # the reference frame: one env at the published settings
                print(f"[bench_sim] {task} {size}px at the published settings (reference frame) ...", file=sys.stderr)
                published_frames[(task, size)] = bench_one(config(task, size, 1, PUBLISHED), 1, 1, args.seed)[1]
            ref = published_frames[(task, size)]
            row["img_diff"] = round(float(np.mean([np.abs(first[c][0].astype(np.int16) - ref[c][0]).mean()
                                                   for c in ref])), 2)
    print_table(rows)
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        meta = {"cpu_count": os.cpu_count(), "env": {k: os.environ[k] for k in ("LP_NUM_THREADS",) if k in os.environ}}
        with open(args.out, "w") as f:
            json.dump({"meta": meta, "rows": rows}, f, indent=2)
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
