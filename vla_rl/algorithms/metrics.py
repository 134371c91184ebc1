"""Per-update metrics: explained variance, tensor statistics, averaging minibatch diagnostics.

The loss functions report clip fraction, approx KL and entropy per minibatch (`LossOutput.metrics`);
`mean_metrics` averages them over an update; `rollout_metrics` describes the advantages and
returns of the batch; group estimators report the fraction of filtered groups themselves.
"""

from __future__ import annotations

import math
from typing import Iterable

import torch


def explained_variance(values: torch.Tensor, returns: torch.Tensor, mask: torch.Tensor | None = None) -> float:
    """1 - Var[returns - values] / Var[returns] over the masked entries; NaN when Var[returns] is 0.

    1 is a perfect critic, 0 no better than a constant, negative worse than a constant.
    """
    values, returns = values.detach().flatten().float(), returns.detach().flatten().float()
    if mask is not None:
        keep = mask.flatten()
        values, returns = values[keep], returns[keep]
    if returns.numel() < 2:
        return math.nan
    var = returns.var()
    if var == 0:
        return math.nan
    return (1.0 - (returns - values).var() / var).item()


def tensor_stats(x: torch.Tensor, prefix: str, mask: torch.Tensor | None = None) -> dict[str, float]:
    """{prefix/mean, prefix/std, prefix/min, prefix/max} over the masked entries (NaN when none)."""
    x = x.detach().float()
    if mask is not None:
        x = x[mask]
    if x.numel() == 0:
        return {f"{prefix}/{k}": math.nan for k in ("mean", "std", "min", "max")}
    std = x.std() if x.numel() > 1 else x.new_zeros(())
    mean, std, lo, hi = torch.stack([x.mean(), std, x.min(), x.max()]).tolist()
    return {f"{prefix}/mean": mean, f"{prefix}/std": std, f"{prefix}/min": lo, f"{prefix}/max": hi}


def rollout_metrics(
    advantages: torch.Tensor,
    returns: torch.Tensor,
    mask: torch.Tensor | None = None,
    values: torch.Tensor | None = None,
) -> dict[str, float]:
    """Advantage and return statistics, plus explained_variance when the critic's values are given."""
    out = {**tensor_stats(advantages, "advantages", mask), **tensor_stats(returns, "returns", mask)}
    if values is not None:
        out["explained_variance"] = explained_variance(values, returns, mask)
    return out


def mean_metrics(per_minibatch: Iterable[dict[str, float]]) -> dict[str, float]:
    """Average each key over the minibatch diagnostics that report it."""
    sums: dict[str, float] = {}
    counts: dict[str, int] = {}
    for metrics in per_minibatch:
        for key, value in metrics.items():
            sums[key] = sums.get(key, 0.0) + value
            counts[key] = counts.get(key, 0) + 1
    return {key: sums[key] / counts[key] for key in sums}


def kl_early_stop(approx_kl: float, target_kl: float | None) -> bool:
    """True when the update should stop its remaining epochs: approx_kl above target_kl (None: never)."""
    return target_kl is not None and approx_kl > target_kl
