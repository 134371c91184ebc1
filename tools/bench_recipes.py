"""Benchmark: the policy cost of recipes side by side (rollout actions/s and train step time), in one process.

For each recipe, its policy is built fresh from `model.*` (random weights at the recipe's size; a checkpoint's
weights cost the same) and timed on synthetic observations of the recipe's env (num_envs images at
`env.image_size`, its cameras, proprio and instruction):

- act: one `policy.act(obs, "sample")` on all `env.num_envs` envs; actions/s = envs x chunk length / time
  (the simulator's time is not included: tools/bench_sim.py measures that);
- train step: `evaluate()` + backward + an AdamW step on one minibatch of the recipe's size
  (env.num_envs x rollout.steps_per_iteration / algorithm.num_minibatches samples), and that times
  update_epochs x num_minibatches = the update of one iteration when no group is filtered (an upper bound);
  on `placement.train_threads` torch threads where the recipe sets them (act on `placement.torch_threads`).

Timings on a shared machine move with its load; the ratios between recipes, measured in one process one
after another, hold up better. Prints a table and writes JSON.

    .venv/bin/python tools/bench_recipes.py quickstart quickstart_vla --out bench_recipes.json
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from dataclasses import replace
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from vla_rl.checkpoints import write_text_atomic
from vla_rl.config.loader import load_config
from vla_rl.models.registry import build_policy
from vla_rl.threads import torch_threads

INSTRUCTION = "push the cube to the goal region in front of it"


def median_seconds(fn: Callable[[], object], repeats: int) -> float:
    """Median seconds of `repeats` calls after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def synthetic_obs(n: int, size: int, cameras: tuple[str, ...], proprio_dim: int) -> dict:
    rng = np.random.default_rng(0)
    return {"images": {c: rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8) for c in cameras},
            "proprio": rng.normal(size=(n, proprio_dim)).astype(np.float32), "instruction": [INSTRUCTION] * n}


def bench_recipe(recipe: str, overrides: list[str], action_dim: int, proprio_dim: int, repeats: int) -> dict:
    cfg = load_config(recipe, overrides)
    torch.set_num_threads(cfg.placement.torch_threads or 1)
    cameras = tuple(cfg.env.cameras)
    policy = build_policy(replace(cfg.model, pretrained=None), action_dim, cameras, proprio_dim, seed=0,
                          gripper_convention="open_positive")
    n = cfg.env.num_envs
    obs = synthetic_obs(n, cfg.env.image_size, cameras, proprio_dim)
    t_act = median_seconds(lambda: policy.act(obs, mode="sample"), repeats)
    chunk = int(policy.act(synthetic_obs(1, cfg.env.image_size, cameras, proprio_dim)).actions.shape[1])
    algo = cfg.algorithm
    mb = max(1, n * cfg.rollout.steps_per_iteration // algo.num_minibatches)
    inputs = policy.act(synthetic_obs(mb, cfg.env.image_size, cameras, proprio_dim), mode="sample").forward_inputs
    params = [p for p in policy.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=algo.lr)

    def train_step() -> None:
        opt.zero_grad(set_to_none=True)
        out = policy.evaluate(inputs, temperature=cfg.rollout.temperature)
        (-out.logprobs.mean()).backward()
        opt.step()

    with torch_threads(cfg.placement.train_threads):  # as the run trains (placement.train_threads, when set)
        t_train = median_seconds(train_step, repeats)
        train_threads = torch.get_num_threads()
    steps = algo.update_epochs * algo.num_minibatches
    return {"recipe": recipe, "overrides": overrides, "family": cfg.model.family, "size": cfg.model.size,
            "params": sum(p.numel() for p in policy.parameters()), "num_envs": n, "chunk": chunk,
            "act_s": t_act, "actions_per_s": n * chunk / t_act, "minibatch": mb, "train_step_s": t_train,
            "update_steps_per_iteration": steps, "update_s_per_iteration": steps * t_train,
            "torch_threads": torch.get_num_threads(), "train_threads": train_threads}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("recipes", nargs="+", help="recipes (names under configs/ or files); RECIPE:key=value,key=value "
                                               "adds overrides")
    ap.add_argument("--action-dim", type=int, default=7, help="the env's action size (PushCube, pd_ee_delta_pose: 7)")
    ap.add_argument("--proprio-dim", type=int, default=8, help="the env's proprio size (ManiSkill Panda: 8)")
    ap.add_argument("--repeats", type=int, default=5, help="timed repeats per measurement (median reported)")
    ap.add_argument("--out", default="bench_recipes.json", help="where to write the JSON results")
    args = ap.parse_args()
    rows = []
    for spec in args.recipes:
        recipe, _, extra = spec.partition(":")
        rows.append(bench_recipe(recipe, [o for o in extra.split(",") if o], args.action_dim, args.proprio_dim,
                                 args.repeats))
    base = rows[0]
    print(f"{'recipe':<28} {'family/size':<20} {'params':>8} {'act() s':>8} {'actions/s':>10} {'x':>6} "
          f"{'train step s':>13} {'(minibatch)':>11} {'x':>6} {'update s/it':>11}")
    for r in rows:
        label = r["recipe"] + (":" + ",".join(r["overrides"]) if r["overrides"] else "")
        print(f"{label:<28} {r['family'] + '/' + str(r['size']):<20} {r['params'] / 1e6:>7.2f}M {r['act_s']:>8.3f} "
              f"{r['actions_per_s']:>10.1f} {base['actions_per_s'] / r['actions_per_s']:>5.2f}x "
              f"{r['train_step_s']:>13.3f} {r['minibatch']:>11} {r['train_step_s'] / base['train_step_s']:>5.2f}x "
              f"{r['update_s_per_iteration']:>11.1f}")
    print(f"(x: cost relative to {base['recipe']}; actions/s excludes the simulator; update s/it = every minibatch "
          "of an iteration, no group filtered)")
    result = {"machine": platform.processor() or platform.machine(), "torch": torch.__version__, "rows": rows}
    write_text_atomic(Path(args.out), json.dumps(result, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
