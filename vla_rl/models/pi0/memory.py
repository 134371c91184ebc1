"""Memory plan of a pi0 preset, computed from the network built on the meta device (no memory, no download).

Parameters are counted per part (SigLIP tower, projector, Gemma LM, action expert, the small action /
state / time projections and our heads); the byte figures assume bf16 weights and gradients and
fp32 AdamW moments (two per trainable parameter), the usual full fine-tuning layout on a GPU. The
prefix cache is what `act` keeps between denoising steps: keys and values of every LM layer for
the prefix tokens of one sample.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch

from vla_rl.models.pi0.network import Pi0Network
from vla_rl.models.pi0.spec import SIZES

BF16, FP32 = 2, 4
PARTS = {
    "vision": "paligemma_with_expert.paligemma.model.vision_tower.",
    "projector": "paligemma_with_expert.paligemma.model.multi_modal_projector.",
    "language_model": "paligemma_with_expert.paligemma.model.language_model.",
    "expert": "paligemma_with_expert.gemma_expert.",
}


@dataclass(frozen=True)
class MemoryPlan:
    """Parameter counts and the bytes they imply (see the module docstring)."""

    size: str
    parameters: dict[str, int]
    """Parameters per part ("heads": every module outside the four transformers)."""
    prefix_tokens: int
    """Prefix length: image tokens of every camera + prompt tokens."""
    prefix_cache_bytes_per_sample: int
    """bf16 keys and values of every LM layer over the prefix, for one sample."""

    @property
    def total(self) -> int:
        return sum(self.parameters.values())

    @property
    def weights_bytes(self) -> int:
        return BF16 * self.total

    @property
    def training_bytes(self) -> int:
        """Weights + gradients (bf16) + AdamW moments (2 x fp32) of a full fine-tune."""
        return (BF16 + BF16 + 2 * FP32) * self.total

    def to_dict(self) -> dict:
        return {**dataclasses.asdict(self), "total": self.total, "weights_bytes": self.weights_bytes,
                "training_bytes": self.training_bytes}


def memory_plan(size_name: str, action_dim: int = 7, proprio_dim: int = 8, cameras: int = 2, prompt_tokens: int = 48,
                value_head: bool = True) -> MemoryPlan:
    """The plan of preset `size_name` for an environment with these sizes (padded as the preset pads them)."""
    size = SIZES[size_name]
    vocab = size.vocab_size or 576
    state_dim = 0 if size.pi05 or not proprio_dim else max(proprio_dim, size.max_state_dim or 0)
    with torch.device("meta"):
        net = Pi0Network(size, vocab, 0, max(action_dim, size.max_action_dim or 0), state_dim,
                         size.value_hidden if value_head else None, None)
    counts = dict.fromkeys([*PARTS, "heads"], 0)
    for name, param in net.named_parameters():
        part = next((p for p, prefix in PARTS.items() if name.startswith(prefix)), "heads")
        counts[part] += param.numel()
    tokens = cameras * (size.image_size // size.patch_size) ** 2 + prompt_tokens
    cache = 2 * size.layers * size.kv_heads * size.head_dim * tokens * BF16
    return MemoryPlan(size_name, counts, tokens, cache)


__all__ = ["MemoryPlan", "memory_plan"]
