"""The clipped surrogate objective of PPO, with asymmetric and dual clipping.

With ratio r = exp(logp - old_logp) and advantage A, the per-element loss (to minimise) is

    L = max(-A r, -A clip(r, 1 - clip_ratio, 1 + clip_ratio_high))  (PPO, asymmetric clip)
    L = min(L, -A c)   where A < 0, when dual_clip = c > 1             (dual-clip PPO, Ye et al. 2020)

Clipping stops the gradient once the ratio has moved past 1 + clip_ratio_high on a positive advantage
or past 1 - clip_ratio on a negative one (an asymmetric range, clip_ratio_high > clip_ratio, lets rare
tokens grow: "clip-higher" of DAPO; clip_ratio_high=None is the symmetric clip_ratio). For A < 0 the
plain objective grows without bound in r; the dual clip caps it at -A c, which also zeroes the gradient
where r > c. The names and their meaning are those of the `algorithm:` config section.
"""

from __future__ import annotations

import torch

from vla_rl.algorithms.aggregation import weighted_sum


def clipped_policy_loss(
    logprobs: torch.Tensor,
    old_logprobs: torch.Tensor,
    advantages: torch.Tensor,
    weights: torch.Tensor,
    *,
    clip_ratio: float,
    clip_ratio_high: float | None,
    dual_clip: float | None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Aggregated clipped loss and diagnostics; all tensors share one shape (any granularity).

    `weights` come from `loss_weights`; where a weight is 0 the element is ignored and gets no
    gradient. Diagnostics (0-dim tensors, means over the weighted elements): clip_fraction,
    dual_clip_fraction, approx_kl (k3 of old vs new, the usual early-stop statistic), ratio_mean,
    ratio_max.
    """
    if not (logprobs.shape == old_logprobs.shape == advantages.shape == weights.shape):
        raise ValueError(f"logprobs {tuple(logprobs.shape)}, old_logprobs {tuple(old_logprobs.shape)}, "
                         f"advantages {tuple(advantages.shape)} and weights {tuple(weights.shape)} must match")
    if dual_clip is not None and dual_clip <= 1.0:
        raise ValueError(f"dual_clip={dual_clip} must be > 1 (or None to turn it off)")
    used = weights > 0
    log_ratio = torch.where(used, logprobs - old_logprobs, torch.zeros_like(logprobs))
    ratio = log_ratio.exp()
    unclipped = -advantages * ratio
    high = clip_ratio if clip_ratio_high is None else clip_ratio_high
    clipped = -advantages * ratio.clamp(1.0 - clip_ratio, 1.0 + high)
    loss = torch.maximum(unclipped, clipped)
    is_clipped = clipped > unclipped
    is_dual = torch.zeros_like(is_clipped)
    if dual_clip is not None:
        cap = -advantages * dual_clip
        is_dual = (advantages < 0) & (loss > cap)
        loss = torch.where(is_dual, cap, loss)

    n = used.sum().clamp_min(1)
    frac = lambda flag: (flag & used).sum() / n  # noqa: E731 - a local shorthand
    with torch.no_grad():
        diagnostics = {
            "clip_fraction": frac(is_clipped),
            "dual_clip_fraction": frac(is_dual),
            "approx_kl": torch.where(used, ratio - 1 - log_ratio, torch.zeros_like(ratio)).sum() / n,
            "ratio_mean": torch.where(used, ratio, torch.zeros_like(ratio)).sum() / n,
            "ratio_max": torch.where(used, ratio, torch.zeros_like(ratio)).max(),
        }
    return weighted_sum(loss, weights), diagnostics
