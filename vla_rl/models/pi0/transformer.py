"""The two-stream transformer of pi0: the Gemma LM over the prefix, the Gemma action expert over the suffix.

Layer i of the expert attends over the keys and values of LM layer i (the prefix) and its own (the
suffix), as openpi's `PaliGemmaWithExpertModel` computes one joint attention per layer with each
stream's own projections, norms and MLP. Prefix tokens never attend to the suffix, so the prefix can
run alone once and its per-layer keys and values serve every denoising step (`prefix_forward`, then
`expert_forward` per step or for all steps at once): the same numbers as the joint pass.

Attention is written out here (masks are boolean (N, 1, Q, K); every query sees at least one key,
padding only ever hides keys) instead of calling the Gemma layers' forward, whose cache and mask
handling assume one causal stream. The layers' parameters are the transformers modules' own, so
the names are those of `GemmaModel`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from transformers.models.gemma.modeling_gemma import apply_rotary_pos_emb

KV = list[tuple[torch.Tensor, torch.Tensor]]
"""Per-layer (keys, values) of the prefix, each (N, kv_heads, L, head_dim), rotary positions applied."""


class AdaRMSNorm(nn.Module):
    """pi0.5's adaptive RMS norm: `dense` maps the time condition to a scale, a shift and a residual gate
    (zero-initialised, so it starts as a plain RMS norm whose block adds nothing)."""

    def __init__(self, dim: int, cond_dim: int, eps: float) -> None:
        super().__init__()
        self.eps = eps
        self.dense = nn.Linear(cond_dim, 3 * dim)
        nn.init.zeros_(self.dense.weight)
        nn.init.zeros_(self.dense.bias)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        normed = x.float() * torch.rsqrt(x.float().pow(2).mean(-1, keepdim=True) + self.eps)
        scale, shift, gate = self.dense(cond.to(self.dense.weight.dtype))[:, None].chunk(3, dim=-1)
        return (normed * (1.0 + scale.float()) + shift.float()).type_as(x), gate


def _norm(module: nn.Module, x: torch.Tensor, cond: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
    if isinstance(module, AdaRMSNorm):
        return module(x, cond)
    return module(x), None


def _residual(x: torch.Tensor, out: torch.Tensor, gate: torch.Tensor | None) -> torch.Tensor:
    return x + (out if gate is None else out * gate)


def _heads(proj: nn.Linear, x: torch.Tensor, head_dim: int) -> torch.Tensor:
    """(N, L, width) -> (N, heads, L, head_dim)."""
    return proj(x).view(*x.shape[:2], -1, head_dim).transpose(1, 2)


def _attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Scaled dot-product attention with grouped key/value heads; (N, heads, Q, d) -> (N, Q, heads * d)."""
    groups = q.shape[1] // k.shape[1]
    if groups > 1:
        k, v = k.repeat_interleave(groups, dim=1), v.repeat_interleave(groups, dim=1)
    out = F.scaled_dot_product_attention(q, k.to(q.dtype), v.to(q.dtype), attn_mask=mask)
    return out.transpose(1, 2).reshape(q.shape[0], q.shape[2], -1)


def prefix_forward(lm: nn.Module, embeds: torch.Tensor, valid: torch.Tensor, positions: torch.Tensor) -> tuple[KV, torch.Tensor]:
    """Run the LM (`GemmaModel`) over the prefix with full attention among its valid tokens.

    embeds (N, L, width), valid (N, L) bool, positions (N, L) -> (per-layer prefix keys/values, final
    normed hidden states (N, L, width))."""
    cos, sin = lm.rotary_emb(embeds, positions)
    mask = valid[:, None, None, :].expand(-1, 1, embeds.shape[1], -1)
    h, kv = embeds, []
    for layer in lm.layers:
        attn = layer.self_attn
        x = layer.input_layernorm(h)
        q, k, v = (_heads(p, x, attn.head_dim) for p in (attn.q_proj, attn.k_proj, attn.v_proj))
        q, k = apply_rotary_pos_emb(q, k, cos, sin)
        kv.append((k, v))
        h = h + attn.o_proj(_attend(q, k, v, mask))
        h = h + layer.mlp(layer.post_attention_layernorm(h))
    return kv, lm.norm(h)


def expert_forward(expert: nn.Module, rotary: nn.Module, embeds: torch.Tensor, positions: torch.Tensor,
                   prefix_kv: KV, prefix_valid: torch.Tensor, suffix_pattern: torch.Tensor,
                   cond: torch.Tensor | None) -> torch.Tensor:
    """Run the expert (`GemmaModel` without embeddings) over the suffix, attending to the prefix.

    embeds (B, S, width_e), positions (B, S); prefix_kv from `prefix_forward` on B prefixes (repeat
    them to score several suffixes per prefix); prefix_valid (B, L) bool; suffix_pattern (S, S) bool:
    which suffix tokens each suffix token sees; cond (B, width_e) for adaRMS norms (pi0.5) or None.
    Returns the final normed hidden states (B, S, width_e)."""
    b, s = embeds.shape[:2]
    cos, sin = rotary(embeds, positions)
    mask = torch.cat([prefix_valid[:, None, None, :].expand(b, 1, s, -1),
                      suffix_pattern[None, None].expand(b, 1, s, s)], dim=-1)
    h = embeds
    for layer, (pk, pv) in zip(expert.layers, prefix_kv):
        attn = layer.self_attn
        x, gate = _norm(layer.input_layernorm, h, cond)
        q, k, v = (_heads(p, x, attn.head_dim) for p in (attn.q_proj, attn.k_proj, attn.v_proj))
        q, k = apply_rotary_pos_emb(q, k, cos, sin)
        out = _attend(q, torch.cat([pk.to(k.dtype), k], dim=2), torch.cat([pv.to(v.dtype), v], dim=2), mask)
        h = _residual(h, attn.o_proj(out), gate)
        x, gate = _norm(layer.post_attention_layernorm, h, cond)
        h = _residual(h, layer.mlp(x), gate)
    return _norm(expert.norm, h, cond)[0]


def use_adarms(expert: nn.Module, cond_dim: int) -> None:
    """Replace the expert's RMS norms (every layer's two and the final one) by adaRMS norms (pi0.5)."""
    eps = expert.norm.eps
    width = expert.norm.weight.shape[0]
    for layer in expert.layers:
        layer.input_layernorm = AdaRMSNorm(width, cond_dim, eps)
        layer.post_attention_layernorm = AdaRMSNorm(width, cond_dim, eps)
    expert.norm = AdaRMSNorm(width, cond_dim, eps)


__all__ = ["AdaRMSNorm", "KV", "expert_forward", "prefix_forward", "use_adarms"]
