"""Log-probabilities for a continuous action head: a distribution centred on the regressed action.

OpenVLA-OFT's L1-regression head outputs one normalised action per slot and has no distribution. For RL
the policy samples around that mean with a state-independent, learned scale per action dim (the
diagonal Gaussian of PPO for continuous control, e.g. CleanRL's `ppo_continuous_action.py`), or with a
Laplace of that scale, whose negative log-likelihood is the L1 loss OFT was trained with (RIPT-VLA's
OFT recipe samples from a Laplace too, with its scale from a separate head). Everything is in the
normalised action space the head regresses ([-1, 1] on the dims the statistics normalise).

As for the discrete heads, `temperature` multiplies the scale both when sampling and when scoring,
so `score(mean, log_scale, sample(...), T)` reproduces the sampled log-prob; greedy mode returns the
mean and its log-density at temperature 1. Log-probs and entropies are per action dim, (..., A).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.distributions import Distribution, Laplace, Normal

DISTRIBUTIONS: dict[str, type[Distribution]] = {"gaussian": Normal, "laplace": Laplace}
"""Name -> torch distribution with (loc, scale); the scale is the Gaussian's std or the Laplace's b."""
LOG_SCALE_RANGE = (-7.0, 1.0)
"""Bounds of the learned log-scale (scale ~0.001 .. 2.7 normalised units), so a collapsing or exploding
scale cannot produce infinite log-probs."""


class ActionScale(nn.Module):
    """One learned log-scale per action dim (`log_scale`, shape (A,)), or a fixed one (`learn=False`)."""

    def __init__(self, action_dim: int, init_scale: float, learn: bool) -> None:
        super().__init__()
        if init_scale <= 0:
            raise ValueError(f"the action scale must be > 0 (got {init_scale}); set model.action_scale, e.g. 0.1")
        self.log_scale = nn.Parameter(torch.full((action_dim,), math.log(init_scale)), requires_grad=learn)

    def forward(self) -> torch.Tensor:
        return self.log_scale.float().clamp(*LOG_SCALE_RANGE)


def _dist(name: str, mean: torch.Tensor, log_scale: torch.Tensor, temperature: float) -> Distribution:
    if name not in DISTRIBUTIONS:
        raise ValueError(f"action distribution {name!r} is not one of {sorted(DISTRIBUTIONS)}")
    if temperature <= 0:
        raise ValueError(f"temperature={temperature} must be > 0")
    return DISTRIBUTIONS[name](mean.float(), log_scale.exp() * temperature)


def sample_actions(name: str, mean: torch.Tensor, log_scale: torch.Tensor, mode: str, temperature: float,
                   generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(actions (...,A), log-probs (...,A)): a draw around `mean` ("sample") or the mean itself ("greedy")."""
    if mode == "greedy":
        actions = mean.float()
        return actions, _dist(name, mean, log_scale, 1.0).log_prob(actions)
    if mode != "sample":
        raise ValueError(f"mode={mode!r}; use 'sample' or 'greedy'")
    dist = _dist(name, mean, log_scale, temperature)
    if name == "gaussian":
        noise = torch.randn(mean.shape, generator=generator, device=mean.device)
        actions = dist.loc + dist.scale * noise
    else:  # Laplace by inverse CDF of a uniform draw in (-0.5, 0.5)
        u = torch.rand(mean.shape, generator=generator, device=mean.device) - 0.5
        u = u.clamp(-0.5 + 1e-7, 0.5 - 1e-7)
        actions = dist.loc - dist.scale * u.sign() * torch.log1p(-2.0 * u.abs())
    return actions, dist.log_prob(actions)


def score_actions(name: str, mean: torch.Tensor, log_scale: torch.Tensor, actions: torch.Tensor,
                  temperature: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(log-probs (...,A), entropies (...,A)) of `actions` under the distribution `sample_actions` drew from."""
    dist = _dist(name, mean, log_scale, temperature)
    return dist.log_prob(actions.float()), dist.entropy().expand(mean.shape)


__all__ = ["DISTRIBUTIONS", "LOG_SCALE_RANGE", "ActionScale", "sample_actions", "score_actions"]
