"""Part (c): one PPO and one GRPO update of OpenVLA-7B with LoRA on one GPU, collocated: time and peak
memory, against the memory plan (vla_rl/models/openvla/memory_plan.py).

Each algorithm gets its own policy (bf16, LoRA rank 32, gradient checkpointing; PPO with a value
head, GRPO without) and the single engine. The phases run as the collocated plan runs them
(`Workers.phase`): the rollout with the optimizer state offloaded to host memory, KV-cache decoding
of N envs x T steps of synthetic observations into the real `RolloutBuffer`, then advantages
(`compute_advantages`: GAE over a window, or groups of 8 sharing a reset id) and `update_policy`
(one epoch of 2 minibatches). The sequence runs twice; the second round is reported (the first
creates the optimizer state and warms the kernels).
"""

from __future__ import annotations

import time
from typing import Any

import torch

from gpu_parts.common import Setting, build, gb, make_obs, row


def _rollout(s: Setting, policy, engine, n: int, steps: int, group: int):
    from vla_rl.runner.buffer import RolloutBuffer

    engine.offload()  # what Workers.phase("rollout") does on a GPU plan
    s.free_memory()
    s.reset_peak()
    buffer = RolloutBuffer(steps, n)
    start = time.perf_counter()
    policy.eval()
    for t in range(steps):
        out = policy.act(make_obs(n, policy.image_size, seed=t), mode="sample")
        success = (torch.arange(n) % group) < group // 2  # every group mixes successes and failures
        last = t == steps - 1
        buffer.add(out.forward_inputs, old_logprobs=out.logprobs.float(),
                   values=out.values.float().cpu() if out.values is not None else torch.zeros(n),
                   step_rewards=(success & last).float()[:, None] + 0.01 * torch.rand(n, 1),
                   step_terminated=(success & last)[:, None], step_truncated=(~success & last)[:, None],
                   bootstrap_values=torch.zeros(n))
    last_values = policy.act(make_obs(n, policy.image_size, seed=steps), mode="greedy").values
    s.sync()
    seconds, peak = time.perf_counter() - start, s.peak_bytes()
    buffer["group_ids"] = torch.arange(n) // group
    return buffer, None if last_values is None else last_values.float().cpu(), seconds, peak


def _update(s: Setting, algo, policy, engine, buffer, last_values):
    from vla_rl.config.schema import RolloutConfig
    from vla_rl.runner.update import compute_advantages, update_policy

    engine.onload()
    s.reset_peak()
    policy.train()  # gradient checkpointing acts in training mode
    start = time.perf_counter()
    compute_advantages(algo, buffer, last_values)
    metrics = update_policy(algo, RolloutConfig(), policy, engine, buffer, torch.Generator().manual_seed(0))
    s.sync()
    return time.perf_counter() - start, s.peak_bytes(), metrics


def one_algorithm(s: Setting, name: str) -> dict[str, Any]:
    from vla_rl.config.algorithm import AlgorithmConfig
    from vla_rl.engines.single import SingleEngine
    from vla_rl.models.openvla.memory_plan import plan_memory
    from vla_rl.models.tokenizer import trim_padding

    n, steps, group = (4, 2, 2) if s.smoke else (16, 4, 8)
    algo = (AlgorithmConfig(name="ppo", advantage="gae", update_epochs=1, num_minibatches=2) if name == "ppo" else
            AlgorithmConfig(name="grpo", advantage="grpo", group_size=group, update_epochs=1, num_minibatches=2,
                            clip_ratio_high=0.28))
    policy = build(s, "openvla", lora=True, checkpointing=True, value_head=name == "ppo")
    engine = SingleEngine(policy, lr=algo.lr, value_lr=algo.value_lr, weight_decay=algo.weight_decay,
                          max_grad_norm=algo.max_grad_norm)
    rounds = []
    for _ in range(2):
        buffer, last_values, t_roll, peak_roll = _rollout(s, policy, engine, n, steps, group)
        t_upd, peak_upd, metrics = _update(s, algo, policy, engine, buffer, last_values)
        rounds.append({"rollout_s": t_roll, "rollout_peak_bytes": peak_roll, "update_s": t_upd,
                       "update_peak_bytes": peak_upd, "loss": metrics.get("train/loss"),
                       "minibatch_updates": metrics.get("train/minibatch_updates")})
    ids, _ = trim_padding(buffer.forward_inputs["input_ids"][0], buffer.forward_inputs["attention_mask"][0])
    total = torch.cuda.get_device_properties(s.device).total_memory if s.cuda else 80e9
    plan = plan_memory(policy, prompt_tokens=ids.shape[1] - 1, gpu_bytes=total)
    minibatch = n * steps // algo.num_minibatches
    planned = {"rollout_bytes": plan.rollout_bytes(n) - plan.reserve_bytes,
               "train_bytes": plan.train_bytes(minibatch, checkpointing=True) - plan.reserve_bytes}
    del engine, policy
    s.free_memory()
    return {"algorithm": name, "envs": n, "steps": steps, "minibatch": minibatch, "rounds": rounds, "plan": planned,
            **rounds[-1]}


def run(s: Setting) -> dict[str, Any]:
    results, rows = {}, []
    for name in ("ppo", "grpo"):
        r = results[name] = one_algorithm(s, name)
        rows.append(row(f"{name.upper()} update, LoRA, {r['envs']} envs x {r['steps']} steps, minibatch {r['minibatch']}",
                        f"{r['update_s']:.2f} s, peak {gb(r['update_peak_bytes'])}",
                        f"plan {gb(r['plan']['train_bytes'])}; rollout {r['rollout_s']:.2f} s, peak "
                        f"{gb(r['rollout_peak_bytes'])} (plan {gb(r['plan']['rollout_bytes'])})"))
    return {"rows": rows, **results}


__all__ = ["run"]
