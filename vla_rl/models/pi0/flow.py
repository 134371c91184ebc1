"""Math of the flow-matching chain: the time grid, each denoising step's Gaussian, log-densities.

Conventions (openpi's): x_t = t * noise + (1 - t) * action, so t runs from 1 (noise) to 0 (the
action chunk) and the network predicts the velocity v = noise - action. On a uniform grid
t_0 = 1 > ... > t_K = 0 with step dt = 1 / K, from x at t to t' = t - dt:

- ODE (greedy, openpi's sampler): x' = x - dt v.
- flow_sde (RLinf's Flow-SDE, after Flow-GRPO): the reverse SDE with the ODE's marginals,
  sigma_t = a sqrt(t / (1 - t)) (1 - t floored at dt, so t = 1 stays finite),
  mean = x0 (1 - t') + x1 (t' - sigma_t^2 dt / (2 t)) with x0 = x - t v and x1 = x + (1 - t) v,
  std = sigma_t sqrt(dt).
- flow_noise (RLinf's Flow-Noise): mean = the ODE step, std = a learned noise head's output.

Each step is a Gaussian with diagonal covariance, so the chain's log-density given its start is the
sum over steps of per-element Gaussian log-densities. The start x_0 ~ N(0, I) has no parameters
and is left out (it cancels in every ratio and KL).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch

from vla_rl.registry import Registry

LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)


def time_grid(steps: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """(steps + 1,) float32 times from 1 down to 0."""
    return torch.linspace(1.0, 0.0, steps + 1, device=device)


def ode_step(x: torch.Tensor, v: torch.Tensor, dt: float) -> torch.Tensor:
    """The deterministic Euler step from t to t - dt."""
    return x - dt * v


def sde_gaussian(x: torch.Tensor, v: torch.Tensor, t: torch.Tensor, dt: float,
                 noise_level: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean, std) of the flow_sde step from x at times t (broadcastable to x) to t - dt."""
    sigma = noise_level * torch.sqrt(t / torch.clamp(1.0 - t, min=dt))
    t_next = t - dt
    x0, x1 = x - t * v, x + (1.0 - t) * v
    mean = x0 * (1.0 - t_next) + x1 * (t_next - sigma.square() * dt / (2.0 * t))
    return mean, (sigma * math.sqrt(dt)).expand_as(mean)


def noise_head_gaussian(x: torch.Tensor, v: torch.Tensor, t: torch.Tensor, dt: float,
                        head_std: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean, std) of the flow_noise step: the ODE step's mean and the noise head's std (shaped like x)."""
    return ode_step(x, v, dt), head_std


def gaussian_logprob(x: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """Per-element log N(x; mean, std^2)."""
    return -torch.log(std) - LOG_SQRT_2PI - 0.5 * ((x - mean) / std).square()


def gaussian_entropy(std: torch.Tensor) -> torch.Tensor:
    """Per-element entropy of N(., std^2): 0.5 log(2 pi e) + log std."""
    return torch.log(std) + LOG_SQRT_2PI + 0.5


@dataclass(frozen=True)
class StepGaussian:
    """One formulation of the denoising step's Gaussian."""

    fn: Callable[..., tuple[torch.Tensor, torch.Tensor]]
    """(x, v, t, dt, noise) -> (mean, std); `noise` is the noise level (flow_sde) or the head's std (flow_noise)."""
    learned_std: bool
    """Whether the std comes from the network's noise head."""


STEP_GAUSSIANS: Registry[StepGaussian] = Registry("denoising step Gaussian")
STEP_GAUSSIANS.register("flow_sde")(StepGaussian(sde_gaussian, learned_std=False))
STEP_GAUSSIANS.register("flow_noise")(StepGaussian(noise_head_gaussian, learned_std=True))


def sample_time(n: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """Flow-matching training times: Beta(1.5, 1) scaled to [0.001, 1] (openpi's), (n,)."""
    beta = torch.distributions.Beta(torch.tensor(1.5), torch.tensor(1.0)).sample((n,))
    return (beta * 0.999 + 0.001).to(device)


__all__ = ["LOG_SQRT_2PI", "STEP_GAUSSIANS", "StepGaussian", "gaussian_entropy", "gaussian_logprob",
           "noise_head_gaussian", "ode_step", "sample_time", "sde_gaussian", "time_grid"]
