"""Benchmark: one learner step of each training engine, one process vs 2 gloo ranks, on this machine.

The same tiny policy (random weights from a size preset) and the same batch of `--batch` samples:

    single          one process, the whole batch (vla_rl.engines.single)
    fsdp2           2 ranks of torch.distributed.fsdp.fully_shard, half the batch each
    deepspeed zK    2 ranks of DeepSpeed ZeRO stage K (1, 2, 3), half the batch each

A step is what the learner does per minibatch: `policy.evaluate` on the rank's share, a PPO-shaped
loss, `engine.step(loss)` (backward, gradient averaging over ranks, clipping, AdamW). The table gives
the median step time and the time to gather the whole weights (`full_model_state`: what a
data-parallel run does after every update to refresh its rollout replica). Engines are measured round
robin (--rounds), so load that drifts on a shared machine hits each alike; each rank runs torch on one
thread. Prints a table and writes JSON (--out).

    .venv/bin/python tools/bench_engines.py --family cnn --batch 32 --steps 10 --out bench_engines.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.multiprocessing as mp

ENGINES = {"single": ("single", None), "fsdp2": ("fsdp2", None), "deepspeed z1": ("deepspeed", 1),
           "deepspeed z2": ("deepspeed", 2), "deepspeed z3": ("deepspeed", 3)}
OPT = dict(lr=1e-4, value_lr=1e-3, weight_decay=0.0, max_grad_norm=1.0)
WORLD = 2


def make_policy(family: str, size: str):
    from vla_rl.config.model import ModelConfig
    from vla_rl.models.registry import build_policy

    return build_policy(ModelConfig(family=family, size=size), action_dim=7, cameras=("main",), proprio_dim=8,
                        seed=0, gripper_convention="open_positive")


def make_batch(policy, batch: int):
    rng = np.random.default_rng(0)
    obs = {"images": {"main": rng.integers(0, 255, (batch, 64, 64, 3), dtype=np.uint8)},
           "proprio": np.zeros((batch, 8), np.float32), "instruction": ["push the cube"] * batch}
    torch.manual_seed(1)
    return policy.act(obs).forward_inputs, torch.linspace(-1.0, 1.0, batch), torch.linspace(0.0, 0.5, batch)


def build_engine(name: str, policy):
    kind, stage = ENGINES[name]
    if kind == "single":
        from vla_rl.engines.single import SingleEngine

        return SingleEngine(policy, **OPT)
    if kind == "fsdp2":
        from vla_rl.engines.fsdp2 import FSDP2Engine

        return FSDP2Engine(policy, **OPT)
    from vla_rl.engines.deepspeed import DeepSpeedEngine

    return DeepSpeedEngine(policy, **OPT, zero_stage=stage)


def measure(name: str, args, rank: int = 0, world: int = 1) -> dict:
    """Step times (s) and the weight-gather time of engine `name` on this rank's share of the batch."""
    policy = make_policy(args.family, args.size)
    inputs, adv, ret = make_batch(policy, args.batch)
    share = slice(rank * args.batch // world, (rank + 1) * args.batch // world)
    inputs, adv, ret = {k: v[share] for k, v in inputs.items()}, adv[share], ret[share]
    engine = build_engine(name, policy)
    steps, gathers = [], []
    for i in range(args.warmup + args.steps):
        start = time.perf_counter()
        out = engine.policy.evaluate(inputs)
        loss = -(out.logprobs.sum((1, 2)) * adv).mean() + 0.5 * ((out.values - ret) ** 2).mean()
        engine.step(loss)
        if i >= args.warmup:
            steps.append(time.perf_counter() - start)
    for _ in range(3):
        start = time.perf_counter()
        engine.full_model_state()
        gathers.append(time.perf_counter() - start)
    return {"step_s": steps, "gather_s": gathers}


def _rank(rank: int, name: str, args, rendezvous: str, out: str) -> None:
    import torch.distributed as dist

    torch.set_num_threads(1)
    os.environ["LOCAL_RANK"] = str(rank)
    dist.init_process_group("gloo", init_method=f"file://{rendezvous}", rank=rank, world_size=WORLD)
    try:
        result = measure(name, args, rank, WORLD)
        parts: list = [None] * WORLD
        dist.all_gather_object(parts, result)
        if rank == 0:  # a step lasts as long as its slowest rank
            Path(out).write_text(json.dumps({k: [max(v) for v in zip(*(p[k] for p in parts))] for k in result}))
    finally:
        dist.destroy_process_group()


def run_engine(name: str, args) -> dict:
    if ENGINES[name][0] == "single":
        torch.set_num_threads(1)
        return measure(name, args)
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "result.json")
        mp.start_processes(_rank, args=(name, args, os.path.join(tmp, "rendezvous"), out), nprocs=WORLD,
                           start_method="spawn")
        return json.loads(Path(out).read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", default="cnn", help="policy family (cnn, openvla)")
    parser.add_argument("--size", default="tiny", help="size preset")
    parser.add_argument("--batch", type=int, default=32, help="samples per step (split over ranks)")
    parser.add_argument("--steps", type=int, default=10, help="timed steps per engine and round")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    parser.add_argument("--rounds", type=int, default=2, help="round-robin rounds over the engines")
    parser.add_argument("--engines", nargs="*", default=list(ENGINES), help=f"subset of {list(ENGINES)}")
    parser.add_argument("--out", default="bench_engines.json", help="JSON output path")
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    runs: dict[str, list[dict]] = {name: [] for name in args.engines}
    for _ in range(args.rounds):
        for name in args.engines:
            runs[name].append(run_engine(name, args))
    rows = []
    for name, results in runs.items():
        steps = [s for r in results for s in r["step_s"]]
        gathers = [s for r in results for s in r["gather_s"]]
        rows.append({"engine": name, "ranks": 1 if name == "single" else WORLD,
                     "step_ms": 1000 * statistics.median(steps), "gather_ms": 1000 * statistics.median(gathers),
                     "round_medians_ms": [1000 * statistics.median(r["step_s"]) for r in results]})
    base = rows[0]["step_ms"] if rows and rows[0]["engine"] == "single" else None
    print(f"{args.family} {args.size}, batch {args.batch}, {args.steps} steps x {args.rounds} rounds, "
          f"torch {torch.__version__}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    print(f"{'engine':<14} {'ranks':>5} {'step ms':>9} {'vs single':>9} {'gather ms':>10}  per-round medians")
    for row in rows:
        rel = f"{row['step_ms'] / base:.2f}x" if base else "-"
        rounds = ", ".join(f"{v:.1f}" for v in row["round_medians_ms"])
        print(f"{row['engine']:<14} {row['ranks']:>5} {row['step_ms']:>9.1f} {rel:>9} {row['gather_ms']:>10.1f}  "
              f"{rounds}")
    meta = {"family": args.family, "size": args.size, "batch": args.batch, "steps": args.steps, "rounds": args.rounds,
            "torch": torch.__version__, "machine": platform.platform(), "cpus": os.cpu_count()}
    Path(args.out).write_text(json.dumps({"meta": meta, "rows": rows, "runs": runs}, indent=2))


if __name__ == "__main__":
    main()
