"""Log-prob granularity: token (N, K, A), action (N, K) or chunk (N,).

The policy returns one log-prob per action token, (N, K, A): N samples (chunk-steps), K actions per
chunk, A tokens per action. The PPO ratio can be taken per token, per action (sum over A: the
log-prob of the whole action) or per chunk (sum over K and A). Actions that were not executed
(after a done inside the chunk, `action_mask` False) are left out of every sum, so the chunk's
ratio covers exactly the actions the environment ran.

Advantages are one per sample (N,) at every granularity and are broadcast to the chosen shape; a
ratio finer than the reward (e.g. per token with chunk rewards) simply shares the chunk's
advantage between its tokens.
"""

from __future__ import annotations

import torch

from vla_rl.algorithms.registries import LOGPROB_GRANULARITIES, Granularity

LOGPROB_GRANULARITIES.register("token")(Granularity(summed_dims=0))
LOGPROB_GRANULARITIES.register("action")(Granularity(summed_dims=1))
LOGPROB_GRANULARITIES.register("chunk")(Granularity(summed_dims=2))


def action_mask_of(mask: torch.Tensor, num_samples: int, chunk: int) -> torch.Tensor:
    """A sample mask (N,) or action mask (N, K), as a bool (N, K) action mask."""
    if mask.dtype != torch.bool:
        raise ValueError(f"mask must be a bool tensor, got {mask.dtype}; convert with `.bool()`")
    if mask.shape == (num_samples,):
        return mask[:, None].expand(num_samples, chunk)
    if mask.shape == (num_samples, chunk):
        return mask
    raise ValueError(f"mask has shape {tuple(mask.shape)}, expected ({num_samples},) per sample "
                     f"or ({num_samples}, {chunk}) per action")


def to_granularity(tokens: torch.Tensor, granularity: str, action_mask: torch.Tensor) -> torch.Tensor:
    """Sum a (N, K, A) per-token tensor to `granularity`, leaving out actions where `action_mask` is False.

    Masked entries are replaced by 0 before summing, so they receive no gradient (and a NaN or
    -inf there cannot leak into the result).
    """
    if tokens.dim() != 3:
        raise ValueError(f"per-token tensor has shape {tuple(tokens.shape)}, expected (N, K, A)")
    keep = action_mask_of(action_mask, tokens.shape[0], tokens.shape[1])[..., None]
    tokens = torch.where(keep, tokens, torch.zeros_like(tokens))
    dims = LOGPROB_GRANULARITIES.get(granularity).summed_dims
    return tokens.sum(dim=tuple(range(3 - dims, 3))) if dims else tokens


def mask_to_granularity(action_mask: torch.Tensor, granularity: str, tokens_per_action: int) -> torch.Tensor:
    """A bool (N, K) action mask at `granularity`: (N, K, A), (N, K) or (N,) (any action valid)."""
    dims = LOGPROB_GRANULARITIES.get(granularity).summed_dims
    if dims == 0:
        return action_mask[..., None].expand(*action_mask.shape, tokens_per_action)
    return action_mask if dims == 1 else action_mask.any(-1)


def expand_to(per_sample: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Broadcast a per-sample tensor (N,) to the shape of `like` (N, ...)."""
    if per_sample.shape != like.shape[:1]:
        raise ValueError(f"per-sample tensor has shape {tuple(per_sample.shape)}, expected ({like.shape[0]},)")
    return per_sample.reshape(-1, *([1] * (like.dim() - 1))).expand_as(like)
