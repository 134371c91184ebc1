"""Autoregressive decoding of action tokens, batched over environments.

`decode_with_cache` is the fast path `act` uses: one prefill of prompt + image, then one
single-token step per remaining action token against a KV cache, logits restricted to the 256
action ids. `decode_reference` recomputes the whole sequence at every step without a cache; it
defines the distribution the fast path must reproduce (tests compare the two).

Both return restricted indices (N, T), their log-probs (N, T) (see sampling.choose_tokens) and the
hidden state at the last prompt position (N, H), which feeds the value head.
"""

from __future__ import annotations

import torch
from transformers import DynamicCache

from vla_rl.models.openvla.network import OpenVLANetwork, positions_from_mask
from vla_rl.models.sampling import choose_tokens


@torch.no_grad()
def decode_with_cache(net: OpenVLANetwork, embeds: torch.Tensor, mask: torch.Tensor, n_tokens: int, mode: str,
                      temperature: float, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Prefill once, then `n_tokens - 1` cached single-token steps."""
    cache = DynamicCache(config=net.language_model.config)
    positions = positions_from_mask(mask)
    hidden = net.backbone(embeds, mask, positions, cache)[:, -1]
    h_prompt = hidden
    picks, logps = [], []
    for step in range(n_tokens):
        index, logp = choose_tokens(net.action_logits(hidden), mode, temperature, generator)
        picks.append(index)
        logps.append(logp)
        if step == n_tokens - 1:
            break
        token = net.embed_ids(index + net.first_action_id).unsqueeze(1)
        mask = torch.cat([mask, mask.new_ones(mask.shape[0], 1)], dim=1)
        positions = positions[:, -1:] + 1
        hidden = net.backbone(token, mask, positions, cache)[:, -1]
    return torch.stack(picks, dim=1), torch.stack(logps, dim=1), h_prompt


@torch.no_grad()
def decode_reference(net: OpenVLANetwork, embeds: torch.Tensor, mask: torch.Tensor, n_tokens: int, mode: str,
                     temperature: float, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Same distribution as `decode_with_cache`, recomputing the full sequence at every step (slow)."""
    picks, logps, h_prompt = [], [], None
    seq, seq_mask = embeds, mask
    for _ in range(n_tokens):
        hidden = net.backbone(seq, seq_mask, positions_from_mask(seq_mask))[:, -1]
        h_prompt = hidden if h_prompt is None else h_prompt
        index, logp = choose_tokens(net.action_logits(hidden), mode, temperature, generator)
        picks.append(index)
        logps.append(logp)
        seq = torch.cat([seq, net.embed_ids(index + net.first_action_id).unsqueeze(1)], dim=1)
        seq_mask = torch.cat([seq_mask, seq_mask.new_ones(seq_mask.shape[0], 1)], dim=1)
    return torch.stack(picks, dim=1), torch.stack(logps, dim=1), h_prompt


DECODERS = {"kv_cache": decode_with_cache, "reference": decode_reference}

__all__ = ["DECODERS", "decode_reference", "decode_with_cache"]
