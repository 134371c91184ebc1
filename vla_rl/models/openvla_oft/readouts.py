"""How the OFT policy turns its action-slot hidden states into actions and log-probs (`model.action_head`).

- "tokens": the LM head's 256 action ids at each slot, a categorical per dim (exact log-probs; what
  RLinf's and SimpleVLA-RL's OFT policies train). Stored as "action_tokens" (N, K, A) int64 ids.
- "l1_regression": OFT's continuous head (l1_head.py) regresses the normalised chunk; the policy samples
  around it with a learned scale (continuous.py). Stored as "actions" (N, K, A) float32, normalised.

A readout holds no weights of its own (they live on the network) and is chosen through a registry,
so the policy never branches on the head's name.
"""

from __future__ import annotations

import abc

import numpy as np
import torch

from vla_rl.models.action_codec import N_BINS, ActionCodec
from vla_rl.models.continuous import sample_actions, score_actions
from vla_rl.models.sampling import choose_tokens, score_tokens
from vla_rl.registry import Registry

OFT_ACTION_HEADS: Registry[type["ActionReadout"]] = Registry("OFT action head")


class ActionReadout(abc.ABC):
    """Slot hidden states (N, K*A, H) -> chosen actions, their log-probs and entropies, per dim (N, K, A)."""

    key: str
    """The forward_inputs key that stores the chosen actions."""
    discrete: bool
    """True when log-probs are of a 256-way categorical per dim (entropy <= log 256)."""

    def __init__(self, net, chunk: int, action_dim: int, distribution: str | None) -> None:
        self.net, self.chunk, self.action_dim, self.distribution = net, chunk, action_dim, distribution

    @abc.abstractmethod
    def choose(self, slots: torch.Tensor, mode: str, temperature: float) -> tuple[torch.Tensor, torch.Tensor]:
        """(stored actions, log-probs (N, K, A)) for "sample" or "greedy" `mode`."""

    @abc.abstractmethod
    def score(self, slots: torch.Tensor, stored: torch.Tensor, temperature: float) -> tuple[torch.Tensor, torch.Tensor]:
        """(log-probs, entropies), each (N, K, A), of stored actions (with gradients)."""

    @abc.abstractmethod
    def to_env(self, stored: torch.Tensor, codec: ActionCodec) -> np.ndarray:
        """Stored actions -> float32 environment actions (N, K, A)."""

    @abc.abstractmethod
    def targets(self, env_actions: np.ndarray, codec: ActionCodec) -> torch.Tensor:
        """Environment actions (e.g. demonstrations) in the stored form, for `evaluate` (SFT)."""


@OFT_ACTION_HEADS.register("tokens")
class TokenReadout(ActionReadout):
    key, discrete = "action_tokens", True

    def _logits(self, slots: torch.Tensor) -> torch.Tensor:
        return self.net.action_logits(slots).view(-1, self.chunk, self.action_dim, N_BINS)

    def choose(self, slots, mode, temperature):
        index, logp = choose_tokens(self._logits(slots), mode, temperature)
        return index + self.net.first_action_id, logp

    def score(self, slots, stored, temperature):
        return score_tokens(self._logits(slots), stored.to(slots.device) - self.net.first_action_id, temperature)

    def to_env(self, stored, codec):
        return codec.decode(stored.cpu().numpy())

    def targets(self, env_actions, codec):
        return torch.as_tensor(codec.encode(env_actions), dtype=torch.long)


@OFT_ACTION_HEADS.register("l1_regression")
class L1Readout(ActionReadout):
    key, discrete = "actions", False

    def choose(self, slots, mode, temperature):
        return sample_actions(self.distribution, self.net.action_head(slots), self.net.action_scale(), mode, temperature)

    def score(self, slots, stored, temperature):
        return score_actions(self.distribution, self.net.action_head(slots), self.net.action_scale(),
                             stored.to(slots.device), temperature)

    def to_env(self, stored, codec):
        return codec.to_env(stored.cpu().numpy())

    def targets(self, env_actions, codec):
        return torch.as_tensor(codec.from_env(env_actions), dtype=torch.float32)


__all__ = ["OFT_ACTION_HEADS", "ActionReadout", "L1Readout", "TokenReadout"]
