"""KL divergence to a frozen reference policy, estimated per token from sampled log-probs.

With log r = ref_logp - logp on tokens sampled from the current policy (Schulman, "Approximating
KL divergence", 2020):

- k1 = -log r = logp - ref_logp            (unbiased, high variance, can be negative)
- k2 = 0.5 (log r)^2                        (biased, low variance, >= 0)
- k3 = r - 1 - log r                        (unbiased, low variance, >= 0; GRPO's choice)

The penalty is added to the loss (not folded into the rewards). The reference log-probs come from
a frozen copy of the initial policy and must not carry gradients.
"""

from __future__ import annotations

import torch

from vla_rl.algorithms.aggregation import weighted_sum
from vla_rl.algorithms.registries import KL_ESTIMATORS


@KL_ESTIMATORS.register("k1")
def kl_k1(logprobs: torch.Tensor, ref_logprobs: torch.Tensor) -> torch.Tensor:
    return logprobs - ref_logprobs


@KL_ESTIMATORS.register("k2")
def kl_k2(logprobs: torch.Tensor, ref_logprobs: torch.Tensor) -> torch.Tensor:
    return 0.5 * (ref_logprobs - logprobs) ** 2


@KL_ESTIMATORS.register("k3")
def kl_k3(logprobs: torch.Tensor, ref_logprobs: torch.Tensor) -> torch.Tensor:
    log_r = ref_logprobs - logprobs
    return log_r.exp() - 1 - log_r


def kl_penalty(logprobs: torch.Tensor, ref_logprobs: torch.Tensor, weights: torch.Tensor, estimator: str) -> torch.Tensor:
    """Aggregated KL(current || reference) estimate; all tensors share one shape."""
    if ref_logprobs.requires_grad:
        raise ValueError("ref_logprobs requires grad; compute them from the frozen reference policy "
                         "under torch.no_grad() (or .detach() them)")
    if logprobs.shape != ref_logprobs.shape or logprobs.shape != weights.shape:
        raise ValueError(f"logprobs {tuple(logprobs.shape)}, ref_logprobs {tuple(ref_logprobs.shape)} "
                         f"and weights {tuple(weights.shape)} must match")
    used = weights > 0
    zero = torch.zeros_like(logprobs)
    per_token = KL_ESTIMATORS.get(estimator)(torch.where(used, logprobs, zero), torch.where(used, ref_logprobs, zero))
    return weighted_sum(per_token, weights)
