"""What every policy loss returns: named loss terms (the caller sums them) and float diagnostics."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class LossOutput:
    """Named, coefficient-weighted loss terms and a flat dict of float diagnostics."""

    terms: dict[str, torch.Tensor]
    """0-dim tensors, already multiplied by their coefficients: policy_loss, entropy_loss, kl_loss,
    and value_loss for losses with a critic. Their sum is the loss to backpropagate."""
    metrics: dict[str, float]
    """Diagnostics for logging: clip_fraction, dual_clip_fraction, approx_kl, entropy, kl, ..."""

    def total(self) -> torch.Tensor:
        """The sum of the terms."""
        return torch.stack(list(self.terms.values())).sum()


def to_floats(tensors: dict[str, torch.Tensor]) -> dict[str, float]:
    """0-dim tensors -> floats with one device-to-host transfer."""
    if not tensors:
        return {}
    values = torch.stack([t.detach().float().reshape(()) for t in tensors.values()]).tolist()
    return dict(zip(tensors, values))
