"""The pi0 network: a PaliGemma prefix (SigLIP + projector + Gemma LM) and a Gemma action expert.

Module names follow openpi's PyTorch `PI0Pytorch` (and LeRobot's port, which adds a leading
`model.`): `paligemma_with_expert.paligemma` (a transformers `PaliGemmaForConditionalGeneration`),
`paligemma_with_expert.gemma_expert.model` (a `GemmaModel` without embeddings), `action_in_proj`,
`action_out_proj`, and for pi0 `state_proj`, `action_time_mlp_in/out`, for pi0.5 `time_mlp_in/out`
(with adaRMS `dense` layers in the expert's norms). Ours: `value_head` (on the prefix features) and,
for flow_noise, `noise_head`.

Prefix: `[image tokens of each camera][prompt tokens]`, full attention among its valid tokens; image
tokens are the projector's output, prompt embeddings are scaled by sqrt(width) (Gemma's). Suffix:
`[state token][H action tokens]` (pi0 with proprio) or `[H action tokens]`; the state token sees
the prefix and itself, action tokens see the prefix, the state and each other. Positions continue
after the prefix's valid tokens.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from transformers import GemmaConfig, GemmaModel, PaliGemmaConfig, PaliGemmaForConditionalGeneration

from vla_rl.models.images import SIGLIP_MEAN, SIGLIP_STD, normalise_pixels
from vla_rl.models.pi0.spec import Pi0Size, gemma_config, paligemma_config
from vla_rl.models.pi0.transformer import KV, expert_forward, prefix_forward, use_adarms
from vla_rl.models.value_head import ValueHead


def sinusoidal_time(t: torch.Tensor, width: int, min_period: float = 4e-3, max_period: float = 4.0) -> torch.Tensor:
    """(B,) times -> (B, width) sine-cosine features with periods from `min_period` to `max_period` (openpi's)."""
    fraction = torch.linspace(0.0, 1.0, width // 2, dtype=torch.float64, device=t.device)
    period = min_period * (max_period / min_period) ** fraction
    angle = t.double()[:, None] * (2.0 * math.pi / period)[None]
    return torch.cat([torch.sin(angle), torch.cos(angle)], dim=-1).float()


class GemmaExpert(nn.Module):
    """Holds the expert's `GemmaModel` under `.model` (openpi keeps a causal-LM wrapper whose head is unused)."""

    def __init__(self, config: GemmaConfig) -> None:
        super().__init__()
        self.model = GemmaModel(config)
        self.model.embed_tokens = None  # the expert reads action and state embeddings, never token ids


class PaliGemmaWithExpert(nn.Module):
    """The prefix VLM and the action expert side by side (openpi's `PaliGemmaWithExpertModel` names)."""

    def __init__(self, vlm: PaliGemmaConfig, expert: GemmaConfig, pi05: bool) -> None:
        super().__init__()
        self.paligemma = PaliGemmaForConditionalGeneration(vlm)
        self.gemma_expert = GemmaExpert(expert)
        if pi05:
            use_adarms(self.gemma_expert.model, expert.hidden_size)


class NoiseHead(nn.Module):
    """flow_noise: expert features -> per-element std in [std_min, std_max] (Linear, tanh, Linear, sigmoid)."""

    def __init__(self, width: int, hidden: int, out_dim: int, std_min: float, std_max: float) -> None:
        super().__init__()
        self.fc1 = nn.Linear(width, hidden)
        self.fc2 = nn.Linear(hidden, out_dim)
        self.std_min, self.std_max = std_min, std_max

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        z = self.fc2(torch.tanh(self.fc1(h.to(self.fc1.weight.dtype)))).float()
        return self.std_min + (self.std_max - self.std_min) * torch.sigmoid(z)


class Pi0Network(nn.Module):
    """Parameters and forward pieces; the policy (policy.py) owns the denoising chain and the codec."""

    def __init__(self, size: Pi0Size, vocab_size: int, pad_token_id: int, action_dim: int, state_dim: int,
                 value_hidden: int | None, noise_std: tuple[float, float] | None) -> None:
        """`action_dim` / `state_dim`: the (padded) sizes the projections read; state_dim 0 = no state token
        (pi0.5 always: its state is prompt text); `noise_std` (min, max) adds the flow_noise head."""
        super().__init__()
        self.size, self.action_dim, self.state_dim, self.pi05 = size, action_dim, state_dim, size.pi05
        w = size.expert_width
        self.paligemma_with_expert = PaliGemmaWithExpert(paligemma_config(size, vocab_size, pad_token_id),
                                                         gemma_config(size, vocab_size, expert=True), size.pi05)
        self.action_in_proj = nn.Linear(action_dim, w)
        self.action_out_proj = nn.Linear(w, action_dim)
        if size.pi05:
            self.time_mlp_in, self.time_mlp_out = nn.Linear(w, w), nn.Linear(w, w)
        else:
            self.state_proj = nn.Linear(state_dim, w) if state_dim else None
            self.action_time_mlp_in, self.action_time_mlp_out = nn.Linear(2 * w, w), nn.Linear(w, w)
        self.value_head = ValueHead(size.width, value_hidden) if value_hidden else None
        self.noise_head = NoiseHead(w, size.noise_hidden, action_dim, *noise_std) if noise_std else None

    # ---------------------------------------------------------------- parts
    @property
    def vlm(self) -> nn.Module:
        return self.paligemma_with_expert.paligemma.model

    @property
    def expert(self) -> nn.Module:
        return self.paligemma_with_expert.gemma_expert.model

    @property
    def has_state_token(self) -> bool:
        return not self.pi05 and self.state_proj is not None

    # ---------------------------------------------------------------- prefix
    def embed_prefix(self, images: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """`[image tokens of cameras 1..C][prompt]` from images (N, C, 3, S, S) uint8 and prompt ids (N, L):
        embeddings (N, T, width) and the valid-token mask (N, T) bool."""
        n, c = images.shape[:2]
        dtype = self.action_in_proj.weight.dtype
        pixels = normalise_pixels(images.flatten(0, 1), SIGLIP_MEAN, SIGLIP_STD, dtype)
        patches = self.vlm.multi_modal_projector(self.vlm.vision_tower(pixel_values=pixels).last_hidden_state)
        patches = patches.view(n, c * patches.shape[1], patches.shape[2])
        text = self.vlm.language_model.embed_tokens(input_ids)
        text = text * torch.tensor(math.sqrt(text.shape[-1]), dtype=text.dtype)
        valid = torch.cat([attention_mask.new_ones(n, patches.shape[1]), attention_mask], dim=1).bool()
        return torch.cat([patches.to(text.dtype), text], dim=1), valid

    def prefix(self, images: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[KV, torch.Tensor, torch.Tensor]:
        """(per-layer prefix keys/values, final prefix hidden states (N, T, width), valid mask (N, T))."""
        embeds, valid = self.embed_prefix(images, input_ids, attention_mask)
        positions = (valid.long().cumsum(-1) - 1).clamp(min=0)
        kv, hidden = prefix_forward(self.vlm.language_model, embeds, valid, positions)
        return kv, hidden, valid

    def value(self, hidden: torch.Tensor, valid: torch.Tensor) -> torch.Tensor | None:
        """The value head on the mean of the prefix's valid final hidden states, (N,)."""
        if self.value_head is None:
            return None
        weights = valid.to(hidden.dtype)[..., None]
        return self.value_head((hidden * weights).sum(1) / weights.sum(1).clamp_min(1.0))

    # ---------------------------------------------------------------- suffix
    def embed_suffix(self, x: torch.Tensor, t: torch.Tensor, state: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Noisy chunk x (B, H, D) at times t (B,) (+ state (B, P)) -> suffix embeddings (B, S, w), the
        suffix attention pattern (S, S) bool, and the adaRMS condition (B, w) (pi0.5) or None."""
        b, horizon = x.shape[:2]
        dtype = self.action_in_proj.weight.dtype
        time = sinusoidal_time(t, self.size.expert_width).to(dtype)
        actions = self.action_in_proj(x.to(dtype))
        cond = None
        if self.pi05:
            cond = F.silu(self.time_mlp_out(F.silu(self.time_mlp_in(time))))
            tokens = actions
        else:
            mixed = torch.cat([actions, time[:, None].expand(-1, horizon, -1)], dim=-1)
            tokens = self.action_time_mlp_out(F.silu(self.action_time_mlp_in(mixed)))
        pattern = torch.ones(horizon, horizon, dtype=torch.bool, device=x.device)
        if self.has_state_token:
            if state is None:
                raise ValueError("this policy was built with proprio input; pass obs['proprio']")
            tokens = torch.cat([self.state_proj(state.to(dtype))[:, None], tokens], dim=1)
            pattern = torch.ones(horizon + 1, horizon + 1, dtype=torch.bool, device=x.device)
            pattern[0, 1:] = False  # the state token does not see the actions
        return tokens, pattern, cond

    def velocity(self, prefix_kv: KV, prefix_valid: torch.Tensor, x: torch.Tensor, t: torch.Tensor,
                 state: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """Velocity v (B, H, D) float32 and the expert's action features (B, H, w) for x (B, H, D) at t (B,)."""
        embeds, pattern, cond = self.embed_suffix(x, t, state)
        offset = prefix_valid.long().sum(-1, keepdim=True)
        positions = offset + torch.arange(embeds.shape[1], device=x.device)[None]
        hidden = expert_forward(self.expert, self.vlm.language_model.rotary_emb, embeds, positions, prefix_kv,
                                prefix_valid, pattern, cond)
        features = hidden[:, -x.shape[1]:]
        return self.action_out_proj(features).float(), features


__all__ = ["GemmaExpert", "NoiseHead", "PaliGemmaWithExpert", "Pi0Network", "sinusoidal_time"]
