"""Benchmark: the same rollout window, sequential vs pipelined, on this machine.

Real ManiSkill3 PickCube from RGB (CPU physics, lavapipe rendering) and a random-weight OpenVLA-style
policy built from a size preset. One env (N envs in W worker processes) and one policy are built
once; each mode then collects `--steps` policy steps per env into a rollout buffer with the real
collectors (`vla_rl.runner.collect`):

    sequential          collect_window, one stage: infer all N, then simulate all N (the collocated path)
    pipelined k=K       collect_window, K stages: N/K envs per stage, stage i simulated while stage
                        i-1 is inferred; every process may use every core
    hybrid k=K pinned   the same, env workers pinned to half the cores and the policy to the other
                        half (the hybrid placement's CPU pinning); skipped with --no-pin

The table also splits each window step into time spent inferring and time blocked on the simulators
(pipelining hides simulation behind inference: the blocked time drops; on shared cores inference
slows down instead). Per-stage times are measured first on their own: t_sim (one chunk step of all N envs) and t_inf
(one `act` on N observations). The ideal pipelined speedup is (t_sim + t_inf) / max(t_sim, t_inf).
Modes are measured round robin (--repeats rounds), so load that drifts on a shared machine hits
each alike; the table shows the median and every run. Prints a table and writes JSON (--out).

    .venv/bin/python tools/bench_placement.py --num-envs 4 --stages 2 --steps 8 --out bench_placement.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from typing import Any, Callable

import torch


def build(args):
    from simulators.registry import make_env
    from vla_rl.config.env import EnvConfig
    from vla_rl.config.model import ModelConfig
    from vla_rl.models.registry import build_policy

    workers = args.workers or args.num_envs
    env = make_env(EnvConfig(task="PickCube-v1", num_envs=args.num_envs, num_workers=workers,
                             image_size=args.image_size, reward_mode="dense", max_episode_steps=50,
                             mesh_detail=args.mesh_detail))
    spec = env.spec
    policy = build_policy(ModelConfig(family="openvla", size=args.model_size, value_head=True),
                          action_dim=spec.action_dim, cameras=spec.cameras, proprio_dim=spec.proprio_dim, seed=0,
                          gripper_convention=spec.gripper_convention).eval()
    return env, policy


def timed(fn: Callable[[], Any], repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def measure_stages(env, policy, obs, repeats: int, env_cores, rollout_cores) -> dict[str, Any]:
    """t_sim: one chunk step of all N envs; t_inf: one act on N observations; each unpinned (the
    sequential setting) and pinned to the env / rollout cores (the hybrid one); medians of `repeats`."""
    from placement.cluster import pinned

    actions = policy.act(obs).actions  # warm-up
    t_inf = timed(lambda: policy.act(obs), repeats)
    with pinned(rollout_cores, torch.get_num_threads()):
        policy.act(obs)
        t_inf_pinned = timed(lambda: policy.act(obs), repeats)
    env.chunk_step(actions)
    t_sim = timed(lambda: env.chunk_step(actions), repeats)
    env.pin_workers(env_cores)
    t_sim_pinned = timed(lambda: env.chunk_step(actions), repeats)
    env.pin_workers(sorted(os.sched_getaffinity(0)))
    return {"t_sim_s": statistics.median(t_sim), "t_inf_s": statistics.median(t_inf),
            "t_sim_pinned_s": statistics.median(t_sim_pinned), "t_inf_pinned_s": statistics.median(t_inf_pinned),
            "t_sim_all_s": t_sim, "t_inf_all_s": t_inf, "t_sim_pinned_all_s": t_sim_pinned,
            "t_inf_pinned_all_s": t_inf_pinned}


class Clocked:
    """Forwards to `target`, adding the wall time spent in the named methods to `seconds` (where time goes:
    inferring, or blocked on the simulators)."""

    def __init__(self, target: Any, methods: tuple[str, ...]) -> None:
        self.target, self.methods, self.seconds = target, methods, 0.0

    def __getattr__(self, name: str) -> Any:
        value = getattr(self.target, name)
        if name not in self.methods:
            return value

        def timed_call(*args, **kwargs):
            start = time.perf_counter()
            try:
                return value(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - start

        return timed_call


def run_mode(env, policy, steps: int, stages: int, pin: bool, env_cores, rollout_cores) -> dict[str, float]:
    from placement.cluster import pinned
    from vla_rl.runner.buffer import RolloutBuffer
    from vla_rl.runner.collect import collect_window

    n = env.num_envs
    buffer = RolloutBuffer(steps, n)
    env.pin_workers(env_cores if pin else None)
    if not pin:
        env.pin_workers(sorted(os.sched_getaffinity(0)))
    obs = env.reset()
    sims, infers = Clocked(env, ("chunk_step", "chunk_step_wait")), Clocked(policy, ("act", "value"))
    with pinned(rollout_cores if pin else None, torch.get_num_threads()):
        start = time.perf_counter()
        m = n // stages
        collect_window(sims, infers, buffer, obs, 1.0, [range(s * m, (s + 1) * m) for s in range(stages)],
                       progress=False)
        seconds = time.perf_counter() - start
    return {"seconds": seconds, "env_steps": steps * n, "env_steps_per_s": steps * n / seconds,
            "infer_s_per_step": infers.seconds / steps, "sim_wait_s_per_step": sims.seconds / steps}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-envs", type=int, default=4)
    parser.add_argument("--workers", type=int, default=None, help="env worker processes (default: one per env)")
    parser.add_argument("--stages", type=int, nargs="+", default=[2], help="pipeline stages to compare")
    parser.add_argument("--steps", type=int, default=8, help="policy steps per env in each measured window")
    parser.add_argument("--repeats", type=int, default=2, help="measured windows per mode")
    parser.add_argument("--model-size", default="tiny", help="openvla size preset (tiny, small)")
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--mesh-detail", type=float, default=1.0,
                        help="env.mesh_detail: 0.05 makes simulation ~3-5x cheaper, shifting the sim/inference balance")
    parser.add_argument("--no-pin", action="store_true", help="do not pin env workers / policy to separate cores")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads of the policy in every mode (more than one per free core thrashes "
                             "on a shared machine: measured 150 ms -> 2.8 s per act here)")
    parser.add_argument("--out", default="bench_placement.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cores = sorted(os.sched_getaffinity(0))
    env_cores, rollout_cores = cores[: max(1, len(cores) // 2)], cores[max(1, len(cores) // 2):] or cores
    pin = not args.no_pin
    env, policy = build(args)
    try:
        obs = env.reset()
        stage_times = measure_stages(env, policy, obs, 5, env_cores, rollout_cores)
        t_sim, t_inf = stage_times["t_sim_s"], stage_times["t_inf_s"]
        ideal = (t_sim + t_inf) / max(t_sim, t_inf)
        hybrid_bound = (t_sim + t_inf) / max(stage_times["t_sim_pinned_s"], stage_times["t_inf_pinned_s"])
        modes = [("sequential", 1, False)] + [(f"pipelined k={k}", k, False) for k in args.stages]
        if pin:
            modes += [(f"hybrid k={k} pinned", k, True) for k in args.stages]
        for _, k, pin_mode in modes:  # warm-up of every mode
            run_mode(env, policy, 2, k, pin_mode, env_cores, rollout_cores)
        runs: dict[str, list[dict[str, float]]] = {name: [] for name, _, _ in modes}
        for _ in range(args.repeats):  # round robin, so drifting load on a shared machine hits every mode alike
            for name, k, pin_mode in modes:
                runs[name].append(run_mode(env, policy, args.steps, k, pin_mode, env_cores, rollout_cores))
        results: dict[str, Any] = {}
        for name, k, pin_mode in modes:
            median = {key: statistics.median(r[key] for r in runs[name])
                      for key in ("env_steps_per_s", "infer_s_per_step", "sim_wait_s_per_step")}
            results[name] = {"stages": k, "pinned": pin_mode, **median,
                             "env_steps_per_s_all": [r["env_steps_per_s"] for r in runs[name]]}
    finally:
        env.close()
    base = results["sequential"]["env_steps_per_s"]
    print(f"\nrollout of {args.num_envs} envs x {args.steps} steps, openvla {args.model_size}, "
          f"{args.image_size}px PickCube RGB, {env.spec.extras.get('num_workers')} env workers, {len(cores)} cores")
    print(f"per step: t_sim {t_sim * 1e3:.0f} ms (N envs), t_inf {t_inf * 1e3:.0f} ms (act on N, {torch.get_num_threads()} thread(s); "
          f"{stage_times['t_inf_pinned_s'] * 1e3:.0f} ms pinned to {len(rollout_cores)} core); "
          f"ideal pipelined speedup (t_sim + t_inf) / max(t_sim, t_inf) = {ideal:.2f}x")
    print(f"pinned to disjoint cores ({env_cores} env, {rollout_cores} rollout): t_sim "
          f"{stage_times['t_sim_pinned_s'] * 1e3:.0f} ms, t_inf {stage_times['t_inf_pinned_s'] * 1e3:.0f} ms; bound for "
          f"the pinned hybrid (t_sim + t_inf) / max(t_sim', t_inf') = {hybrid_bound:.2f}x")
    print(f"{'mode':<20} {'env steps/s':>12} {'speedup':>8} {'infer ms/step':>14} {'sim wait ms/step':>17}  runs")
    for name, r in results.items():
        r["speedup"] = r["env_steps_per_s"] / base
        all_runs = ", ".join(f"{x:.2f}" for x in r["env_steps_per_s_all"])
        print(f"{name:<20} {r['env_steps_per_s']:>12.2f} {r['speedup']:>7.2f}x {r['infer_s_per_step'] * 1e3:>14.0f} "
              f"{r['sim_wait_s_per_step'] * 1e3:>17.0f}  [{all_runs}]")
    record = {"machine": {"platform": platform.platform(), "cores": len(cores), "load_avg": os.getloadavg()},
              "args": vars(args), "t_sim_s": t_sim, "t_inf_s": t_inf, "ideal_speedup": ideal, "pinned_hybrid_bound": hybrid_bound,
              "stage_times": stage_times, "modes": results}
    with open(args.out, "w") as f:
        json.dump(record, f, indent=2)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
