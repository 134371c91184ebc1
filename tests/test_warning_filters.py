"""The suite's warning filters (pyproject.toml): a deprecation raised by a call of ours is an error."""

from __future__ import annotations

import warnings

import pytest
import torch
from transformers import DynamicCache

from vla_rl.config.model import ModelConfig
from vla_rl.models.registry import build_policy


def test_deprecation_warnings_are_errors_here():
    for category in (DeprecationWarning, FutureWarning):
        with pytest.raises(category, match="old api"):
            warnings.warn("old api", category, stacklevel=1)


def test_the_decoder_uses_the_current_cache_keyword():
    """LlamaModel.forward's `past_key_values` is deprecated (transformers 5.24, removed in 5.40); the
    backbone passes `cache`, and the old keyword fails the suite."""
    net = build_policy(ModelConfig(family="openvla", size="tiny"), action_dim=7, cameras=("main",), proprio_dim=0,
                       seed=0).net
    embeds, mask = torch.zeros(1, 3, net.language_model.config.hidden_size), torch.ones(1, 3, dtype=torch.long)
    positions = torch.arange(3)[None]
    cache = DynamicCache(config=net.language_model.config)
    assert net.backbone(embeds, mask, positions, cache).shape == (1, 3, net.language_model.config.hidden_size)
    assert cache.get_seq_length() == 3
    with pytest.raises(FutureWarning, match="past_key_values"):
        net.language_model.model(inputs_embeds=embeds, attention_mask=mask, position_ids=positions,
                                 past_key_values=DynamicCache(config=net.language_model.config), use_cache=True)
