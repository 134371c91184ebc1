"""The learner's two phases, joining the rollout buffer to the algorithm layer:

- `compute_advantages`: per chunk-step advantages and returns, the per-action loss mask and the
  trajectory ids, written into the buffer; returns advantage/return statistics.
- `update_policy`: epochs of minibatch updates: re-evaluate the stored inputs, compute the
  configured loss, step the engine; returns averaged diagnostics. Given a frozen reference policy
  (the initial one), the first epoch also reports `train/ref_kl`, KL to it, whether or not the loss
  penalises it.

In a data-parallel run each rank holds its own buffer: `comm` (placement/collective.py; the identity
in one process) makes advantage normalisation use every rank's batch, KL early stopping a decision
all ranks take together, and the returned metrics the average over ranks.

The estimator's declared inputs ("window" or "group") choose how the buffer is read, and the loss's
(`LossInputs`: buffer keys, evaluated fields, reference, config fields) what each minibatch feeds it; no
branch here names an algorithm or a loss argument.
"""

from __future__ import annotations

from typing import Callable, Iterator

import torch

from vla_rl.algorithms import (ADVANTAGE_ESTIMATORS, KL_ESTIMATORS, POLICY_LOSSES, action_mask_from_dones,
                               broadcast_trajectory_advantages, kl_early_stop, mean_metrics, normalize_advantages,
                               reduce_chunk_rewards, rollout_metrics, trajectory_ids, trajectory_returns, valid_mask)
from vla_rl.config.algorithm import AlgorithmConfig
from vla_rl.config.schema import RolloutConfig
from vla_rl.runner.buffer import RolloutBuffer
from placement.collective import Collective

Reduce = Callable[[torch.Tensor], torch.Tensor] | None
"""Sums a tensor over the ranks of a data-parallel run (None: one process)."""
ONE_PROCESS = Collective()


def _window_advantages(algo: AlgorithmConfig, buffer: RolloutBuffer, last_values: torch.Tensor,
                       all_reduce: Reduce = None) -> dict[str, float]:
    """GAE-style estimators over a window of continuing (auto-reset) environments."""
    step_term, step_trunc = buffer.view("step_terminated"), buffer.view("step_truncated")
    chunk = reduce_chunk_rewards(buffer.view("step_rewards"), step_term, step_trunc, algo.gamma,
                                 algo.reward_granularity)
    values = buffer.view("values")
    out = ADVANTAGE_ESTIMATORS.get(algo.advantage).fn(
        chunk.rewards, values, chunk.terminated, chunk.truncated, buffer.view("bootstrap_values"), last_values,
        chunk.discounts, algo.gae_lambda)
    advantages, returns = out.advantages, out.returns
    action_mask = action_mask_from_dones(step_term, step_trunc)
    if algo.normalize_advantages:
        advantages = normalize_advantages(advantages, torch.ones_like(advantages, dtype=torch.bool), algo.adv_eps,
                                          all_reduce)
    buffer["advantages"], buffer["returns"] = advantages, returns
    buffer["action_mask"] = action_mask
    buffer["traj_ids"] = trajectory_ids(chunk.terminated | chunk.truncated)
    return rollout_metrics(advantages, returns, values=values)


def _group_advantages(algo: AlgorithmConfig, buffer: RolloutBuffer, all_reduce: Reduce = None) -> dict[str, float]:
    """Group-relative estimators over fixed-length episodes, one trajectory per environment."""
    dones = buffer.view("step_terminated") | buffer.view("step_truncated")
    returns = trajectory_returns(buffer.view("step_rewards"), valid_mask(dones))
    groups = ADVANTAGE_ESTIMATORS.get(algo.advantage).fn(
        returns, buffer["group_ids"], std_normalize=algo.grpo_std_normalize, eps=algo.adv_eps,
        filter_equal=algo.filter_equal_groups)
    advantages, action_mask = broadcast_trajectory_advantages(groups.advantages, dones)
    action_mask = action_mask & groups.keep[None, :, None]
    step_mask = action_mask.any(-1)
    if algo.normalize_advantages:
        advantages = normalize_advantages(advantages.contiguous(), step_mask, algo.adv_eps, all_reduce)
    t, n = step_mask.shape
    buffer["advantages"] = advantages.contiguous()
    buffer["returns"] = returns[None].expand(t, n).contiguous()
    buffer["action_mask"] = action_mask
    buffer["traj_ids"] = torch.arange(n)[None].expand(t, n).contiguous()
    metrics = rollout_metrics(advantages, buffer["returns"], mask=step_mask)
    metrics["filtered_group_fraction"] = float(groups.filtered_fraction)
    return metrics


def compute_advantages(algo: AlgorithmConfig, buffer: RolloutBuffer, last_values: torch.Tensor | None,
                       comm: Collective = ONE_PROCESS) -> dict[str, float]:
    """Fill buffer["advantages"|"returns"|"action_mask"|"traj_ids"]; returns `train/` statistics."""
    all_reduce = comm.sum if comm.world > 1 else None
    if ADVANTAGE_ESTIMATORS.get(algo.advantage).inputs == "window":
        if last_values is None:
            raise ValueError(f"advantage={algo.advantage!r} needs a continuing rollout window (env.auto_reset=true)")
        metrics = _window_advantages(algo, buffer, last_values, all_reduce)
    else:
        if "group_ids" not in buffer.data:
            raise ValueError(f"advantage={algo.advantage!r} needs fixed-length grouped episodes (env.auto_reset=false)")
        metrics = _group_advantages(algo, buffer, all_reduce)
    return comm.mean_metrics({f"train/{key}": value for key, value in metrics.items()})


def _minibatch_indices(algo: AlgorithmConfig, buffer: RolloutBuffer, generator: torch.Generator) -> Iterator[torch.Tensor]:
    """Random minibatches of flattened samples; with loss_agg="traj_equal", whole environment
    columns, so every trajectory lies inside one minibatch and is weighted equally there."""
    if algo.loss_agg != "traj_equal":
        yield from buffer.minibatches(algo.num_minibatches, generator)
        return
    if algo.num_minibatches > buffer.num_envs:
        raise ValueError(f"loss_agg=traj_equal splits minibatches by environment: num_minibatches="
                         f"{algo.num_minibatches} exceeds env.num_envs={buffer.num_envs}")
    envs = torch.randperm(buffer.num_envs, generator=generator)
    steps = torch.arange(buffer.t)[:, None] * buffer.num_envs
    for part in torch.tensor_split(envs, algo.num_minibatches):
        yield (steps + part[None]).reshape(-1)


def _epochs(algo: AlgorithmConfig, buffer: RolloutBuffer,
            generator: torch.Generator) -> Iterator[tuple[int, torch.Tensor]]:
    """(epoch, minibatch indices) for `algo.update_epochs` passes; each epoch draws its order when it starts."""
    for epoch in range(algo.update_epochs):
        for index in _minibatch_indices(algo, buffer, generator):
            yield epoch, index


def reference_kl(logprobs: torch.Tensor, ref_logprobs: torch.Tensor) -> dict[str, float]:
    """`train/ref_kl`: the mean k3 estimate of KL(policy || reference) per action token over the tokens the
    rollout sampled (every sample, including those of filtered groups): how far training has moved the policy."""
    return {"train/ref_kl": float(KL_ESTIMATORS.get("k3")(logprobs, ref_logprobs).mean())}


def _reference_pass(algo: AlgorithmConfig, ref_policy, mb_inputs: dict[str, torch.Tensor], logprobs: torch.Tensor,
                    first_epoch: bool, temperature: float) -> tuple[torch.Tensor | None, dict[str, float]]:
    """The reference's log-probs for the loss (None unless kl_coef > 0) and, in the first epoch, `train/ref_kl`."""
    if ref_policy is None or not (algo.kl_coef > 0 or first_epoch):
        return None, {}
    with torch.no_grad():
        ref_logprobs = ref_policy.evaluate(mb_inputs, temperature=temperature).logprobs
    ref_kl = reference_kl(logprobs.detach(), ref_logprobs) if first_epoch else {}
    return (ref_logprobs if algo.kl_coef > 0 else None), ref_kl


def update_policy(algo: AlgorithmConfig, rollout: RolloutConfig, policy, engine, buffer: RolloutBuffer,
                  generator: torch.Generator, ref_policy=None, comm: Collective = ONE_PROCESS) -> dict[str, float]:
    """`algo.update_epochs` passes of minibatch updates over the buffer; returns mean diagnostics.

    The loss registered under `algo.name` gets what its `LossInputs` declare: buffer rows, fields of the
    policy's evaluation, the reference's log-probs, and its hyperparameters bound from `algo`."""
    loss = POLICY_LOSSES.get(algo.name)
    if algo.kl_coef > 0 and ref_policy is None:
        raise ValueError("algorithm.kl_coef > 0 needs a frozen reference policy on the actor (ref_policy)")
    hyperparameters = loss.bind(algo)
    inputs = buffer.flat_forward_inputs()
    stored = {name: buffer.flat(key) for name, key in loss.inputs.reads.items()}
    per_minibatch: list[dict[str, float]] = []
    stopped_early = False
    for epoch, index in _epochs(algo, buffer, generator):
        mb_inputs = {k: v[index] for k, v in inputs.items()}
        evaluated = policy.evaluate(mb_inputs, temperature=rollout.temperature)
        ref_logprobs, ref_kl = _reference_pass(algo, ref_policy, mb_inputs, evaluated.logprobs, epoch == 0,
                                               rollout.temperature)
        args = {name: rows[index] for name, rows in stored.items()}
        args.update({name: getattr(evaluated, name) for name in loss.inputs.evaluates})
        if loss.inputs.reference:
            args["ref_logprobs"] = ref_logprobs
        out = loss.fn(**args, **hyperparameters)
        total = out.total()
        step_metrics = engine.step(total)
        per_minibatch.append({**{f"train/{k}": v for k, v in out.metrics.items()},
                              **{f"train/{k}": float(v.detach()) for k, v in out.terms.items()},
                              "train/loss": float(total.detach()), **step_metrics, **ref_kl})
        approx_kl = out.metrics.get("approx_kl", 0.0)
        if comm.world > 1 and algo.target_kl is not None:  # the mean over ranks' minibatches
            approx_kl = float(comm.sum(torch.tensor([float(approx_kl)], dtype=torch.float64))) / comm.world
        if kl_early_stop(approx_kl, algo.target_kl):
            stopped_early = True
            break
    metrics = mean_metrics(per_minibatch)
    metrics["train/minibatch_updates"] = float(len(per_minibatch))
    metrics["train/kl_early_stop"] = float(stopped_early)
    return comm.mean_metrics(metrics)
