"""Math of the restricted 256-way action-token distribution, shared by every discrete-token family.

Every family scores the same 256 bins per action dim, so sampling, log-probs and entropies are one
set of pure functions. Logits arrive as (..., 256) over the restricted index (see action_codec).
Temperature divides the logits for both sampling and scoring, so `act` and `evaluate` agree.
"""

from __future__ import annotations

import torch


def choose_tokens(logits: torch.Tensor, mode: str, temperature: float, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Pick restricted indices from (..., B) logits; returns (index (...) int64, log-prob (...) float32).

    "sample" draws from softmax(logits / temperature) and reports the log-prob under it; "greedy"
    takes the argmax and reports its log-prob at temperature 1.
    """
    logits = logits.float()
    if mode == "greedy":
        index = logits.argmax(dim=-1)
        logp = torch.log_softmax(logits, dim=-1)
    elif mode == "sample":
        if temperature <= 0:
            raise ValueError(f"temperature={temperature} must be > 0 for sampling; use mode='greedy' for argmax")
        logp = torch.log_softmax(logits / temperature, dim=-1)
        flat = logp.reshape(-1, logp.shape[-1]).exp()
        index = torch.multinomial(flat, 1, generator=generator).view(logp.shape[:-1])
    else:
        raise ValueError(f"mode={mode!r}; use 'sample' or 'greedy'")
    return index, logp.gather(-1, index.unsqueeze(-1)).squeeze(-1)


def score_tokens(logits: torch.Tensor, index: torch.Tensor, temperature: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-probs of `index` (...) and entropies under softmax(logits / temperature), logits (..., B)."""
    if temperature <= 0:
        raise ValueError(f"temperature={temperature} must be > 0")
    logp = torch.log_softmax(logits.float() / temperature, dim=-1)
    entropy = -(logp.exp() * logp).sum(dim=-1)
    return logp.gather(-1, index.unsqueeze(-1)).squeeze(-1), entropy


__all__ = ["choose_tokens", "score_tokens"]
