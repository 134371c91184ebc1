"""Supervised fine-tuning of any policy family on demonstrations.

The loss is the family's imitation objective, `policy.supervised_loss` (masked past an episode's
end): for token families the cross-entropy of the demo action tokens (the mean negative log-prob
`policy.evaluate` returns for them), for a flow family its flow-matching loss; plus optionally
`value_coef` x the squared error of the value head against the demos' discounted returns. Held-out
episodes give the validation loss (with a fixed random stream, so a sampling objective is comparable
across steps) and the greedy action error (the L1 distance between `policy.act(obs, "greedy")` and
the demo action, in the env's action space).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
import torch

from simulators.base import select_obs
from vla_rl.config.warmstart import WarmstartConfig
from vla_rl.demos.format import Episode
from vla_rl.engines.single import SingleEngine
from vla_rl.progress import progress_bar
from vla_rl.sft.dataset import SFTSamples, episode_samples, forward_inputs, split_episodes


def sft_loss(policy: Any, inputs: dict[str, torch.Tensor], mask: torch.Tensor, returns: torch.Tensor | None = None,
             value_coef: float = 0.0) -> tuple[torch.Tensor, dict[str, float]]:
    """(loss with gradients, diagnostics) of one minibatch: "sft/loss" (the family's objective) and its
    named diagnostics ("sft/nll", "sft/entropy" for token families)."""
    out = policy.supervised_loss(inputs, mask)
    loss = out.loss
    metrics = {"sft/loss": float(loss.detach()), **{f"sft/{k}": v for k, v in out.metrics.items()}}
    if value_coef > 0:
        if out.values is None:
            raise ValueError("warmstart.value_coef > 0 but the policy has no value head; set model.value_head=true")
        value_loss = 0.5 * (out.values.float() - returns.to(out.values.device)).pow(2).mean()
        loss = loss + value_coef * value_loss
        metrics["sft/value_loss"] = float(value_loss.detach())
    return loss, metrics


@dataclass
class SFTResult:
    """What one SFT run measured."""

    steps: int = 0
    train: list[dict[str, float]] = field(default_factory=list)
    """Per-step training diagnostics (with "step")."""
    holdout: list[dict[str, float]] = field(default_factory=list)
    """Held-out metrics every `eval_loss_every` steps (step 0 included)."""
    train_samples: int = 0
    holdout_samples: int = 0
    train_episodes: list[int] = field(default_factory=list)
    holdout_episodes: list[int] = field(default_factory=list)
    seconds: float = 0.0

    def summary(self) -> dict[str, Any]:
        first = self.holdout[0] if self.holdout else {}
        last = self.holdout[-1] if self.holdout else {}
        final = self.train[-1] if self.train else {}
        return {"steps": self.steps, "train_samples": self.train_samples, "holdout_samples": self.holdout_samples,
                "train_episodes": self.train_episodes, "holdout_episodes": self.holdout_episodes,
                "holdout_loss_initial": first.get("holdout/loss"), "holdout_loss_final": last.get("holdout/loss"),
                "holdout_nll_initial": first.get("holdout/nll"), "holdout_nll_final": last.get("holdout/nll"),
                "holdout_action_l1_initial": first.get("holdout/action_l1"),
                "holdout_action_l1_final": last.get("holdout/action_l1"),
                "train_loss_final": final.get("sft/loss"), "train_nll_final": final.get("sft/nll"),
                "seconds": self.seconds}


HOLDOUT_SEED = 0
"""Seed of the random stream a sampling objective (flow matching) draws from on held-out data."""


@torch.no_grad()
def holdout_metrics(policy: Any, samples: SFTSamples, inputs: dict[str, torch.Tensor], batch: int = 128) -> dict[str, float]:
    """Held-out loss and diagnostics (means over valid chunk entries) and greedy action L1 error (first
    action of each chunk) of `policy`."""
    was_training = policy.training
    policy.eval()
    sums: dict[str, float] = {}
    weight, l1 = 0.0, []
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(HOLDOUT_SEED)
            for first in range(0, len(samples), batch):
                index = np.arange(first, min(first + batch, len(samples)))
                mask = torch.as_tensor(samples.mask[index])
                out = policy.supervised_loss({k: v[index] for k, v in inputs.items()}, mask)
                w = float(mask.sum())
                for key, value in {"loss": float(out.loss), **out.metrics}.items():
                    sums[key] = sums.get(key, 0.0) + value * w
                weight += w
        for first in range(0, len(samples), batch):
            index = np.arange(first, min(first + batch, len(samples)))
            acted = policy.act(select_obs(samples.obs, index), mode="greedy").actions
            l1.append(np.abs(acted[:, 0] - samples.actions[index, 0]).mean(axis=1))
    finally:
        policy.train(was_training)
    metrics = {f"holdout/{key}": total / max(weight, 1.0) for key, total in sums.items()}
    return {**metrics, "holdout/action_l1": float(np.concatenate(l1).mean())}


def train_sft(policy: Any, episodes: Sequence[Episode], cfg: WarmstartConfig, seed: int = 0, progress: bool = True,
              log: Callable[[int, dict[str, float]], None] | None = None) -> SFTResult:
    """Train `policy` in place on `episodes` for `cfg.sft_steps` minibatches; `log(step, metrics)` receives
    training diagnostics every step and held-out metrics every `cfg.eval_loss_every` steps."""
    start = time.perf_counter()
    train_ids, hold_ids = split_episodes(len(episodes), cfg.holdout_fraction, seed)
    k = policy.action_chunk
    train = episode_samples([episodes[i] for i in train_ids], k, cfg.value_gamma)
    train_inputs = forward_inputs(policy, train)
    hold = episode_samples([episodes[i] for i in hold_ids], k, cfg.value_gamma) if hold_ids else None
    hold_inputs = forward_inputs(policy, hold) if hold is not None else None
    result = SFTResult(train_samples=len(train), holdout_samples=len(hold) if hold is not None else 0,
                       train_episodes=train_ids, holdout_episodes=hold_ids)
    engine = SingleEngine(policy, lr=cfg.lr, value_lr=cfg.lr, weight_decay=cfg.weight_decay,
                          max_grad_norm=cfg.max_grad_norm)
    generator = torch.Generator().manual_seed(seed)
    mask_all = torch.as_tensor(train.mask)
    returns_all = torch.as_tensor(train.returns)

    def evaluate_holdout(step: int) -> None:
        if hold is None:
            return
        metrics = holdout_metrics(policy, hold, hold_inputs)
        result.holdout.append({"step": step, **metrics})
        if log is not None:
            log(step, metrics)

    evaluate_holdout(0)
    policy.train()
    bar = progress_bar(range(cfg.sft_steps), desc="sft", unit="step", enabled=progress)
    order = torch.randperm(len(train), generator=generator)
    cursor = 0
    for step in bar:
        if cursor + cfg.batch_size > len(order):  # a new epoch: reshuffle
            order, cursor = torch.randperm(len(train), generator=generator), 0
        index = order[cursor:cursor + cfg.batch_size]
        cursor += cfg.batch_size
        loss, metrics = sft_loss(policy, {key: v[index] for key, v in train_inputs.items()}, mask_all[index],
                                 returns_all[index], cfg.value_coef)
        metrics.update(engine.step(loss))
        result.train.append({"step": step + 1, **metrics})
        if log is not None:
            log(step + 1, metrics)
        bar.set_postfix({key.removeprefix("sft/"): f"{metrics[key]:.3f}" for key in ("sft/loss", "sft/nll") if key in metrics})
        if (step + 1) % cfg.eval_loss_every == 0 or step + 1 == cfg.sft_steps:
            evaluate_holdout(step + 1)
            policy.train()
    bar.close()
    policy.eval()
    result.steps = cfg.sft_steps
    result.seconds = time.perf_counter() - start
    return result


__all__ = ["HOLDOUT_SEED", "SFTResult", "holdout_metrics", "sft_loss", "train_sft"]
