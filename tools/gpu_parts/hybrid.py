"""Part (e): pipelined vs sequential rollout with GPU simulation, a tiny and a 7B OpenVLA policy, against
the ideal bound (t_sim + t_inf) / max(t_sim, t_inf).

The envs are ManiSkill PushCube RGB on our `maniskill_gpu` backend in 2 GPU scenes (one per stage),
the policy on the same GPU. Both modes fill the real `RolloutBuffer` with the real collectors
(`collect_window` with one stage, and with stages = the scenes), measured round robin.
t_sim is one chunk step of all N envs, t_inf one `act` on N observations, each timed alone. The
pipeline overlaps one scene's simulation (on its thread) with the other's inference
(docs/simulators.md, "Pipelining on one GPU").
"""

from __future__ import annotations

import time
from typing import Any

from gpu_parts.common import Setting, build, ms, row
from gpu_parts.sim import make_ours, require_maniskill


def measure(s: Setting, size: str, n: int, steps: int) -> dict[str, Any]:
    from dataclasses import replace

    from vla_rl.runner.buffer import RolloutBuffer
    from vla_rl.runner.collect import collect_window, one_stage

    policy = build(replace(s, size=size), "openvla").eval()
    env = make_ours(s, n, scenes=2, max_steps=100_000)  # no episode ends: both modes do the same work
    try:
        obs = env.reset(list(range(n)))  # once: windows continue from each other, as PPO windows do
        actions = policy.act(obs).actions
        t_inf = s.timed(lambda: policy.act(obs))
        t_sim = s.timed(lambda: env.chunk_step(actions))
        stages = {"sequential": one_stage(env), "pipelined": env.worker_env_ids()}
        times: dict[str, list[float]] = {"sequential": [], "pipelined": []}
        for _ in range(1 + (1 if s.smoke else 2)):  # the first round warms up and is dropped
            for mode in times:
                buffer = RolloutBuffer(steps, n)
                s.sync()
                start = time.perf_counter()
                obs, _, _ = collect_window(env, policy, buffer, obs, 1.0, stages[mode], progress=False)
                s.sync()
                times[mode].append(time.perf_counter() - start)
    finally:
        env.close()
        del policy
        s.free_memory()
    seq, pipe = min(times["sequential"][1:]), min(times["pipelined"][1:])
    ideal = (t_sim + t_inf) / max(t_sim, t_inf)
    return {"policy_size": size, "envs": n, "steps": steps, "t_sim_s": t_sim, "t_inf_s": t_inf, "ideal": ideal,
            "sequential_s": seq, "pipelined_s": pipe, "speedup": seq / pipe, "fraction_of_ideal": (seq / pipe) / ideal,
            "sequential_env_steps_per_s": n * steps / seq, "all_s": times}


def run(s: Setting) -> dict[str, Any]:
    require_maniskill(s)
    # the smoke runs the tiny case only (one CPU scene per stage; a second env build would double its time)
    cases = [("tiny", 2, 2)] if s.smoke else [("tiny", 256, 8), (s.size, 64, 4)]
    rows, data = [], []
    for size, n, steps in cases:
        m = measure(s, size, n, steps)
        data.append(m)
        rows.append(row(f"hybrid k=2, {size} policy, {n} envs x {steps} steps",
                        f"{m['speedup']:.2f}x pipelined/sequential",
                        f"ideal {m['ideal']:.2f}x ({m['fraction_of_ideal']:.0%} of it); t_sim {ms(m['t_sim_s'])}, "
                        f"t_inf {ms(m['t_inf_s'])}; sequential {m['sequential_env_steps_per_s']:,.0f} env steps/s"))
    return {"rows": rows, "cases": data}


__all__ = ["run"]
