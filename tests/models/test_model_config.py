"""ModelConfig: strict loading from plain dicts and the cross-field checks' messages."""

from __future__ import annotations

import pytest

from vla_rl.config.core import ConfigError, from_dict, to_dict
from vla_rl.config.model import ModelConfig


def test_from_dict_with_nested_lora_round_trips():
    raw = {"family": "openvla_oft", "action_chunk": 8, "use_wrist": True,
           "lora": {"enabled": True, "rank": 8, "target_modules": ["q_proj", "v_proj"]}}
    cfg = from_dict(ModelConfig, raw, prefix="model")
    assert cfg.lora.rank == 8 and cfg.lora.target_modules == ("q_proj", "v_proj")
    assert from_dict(ModelConfig, to_dict(cfg), prefix="model") == cfg


@pytest.mark.parametrize("raw,message", [
    ({"family": "openvla", "action_chunk": 4}, "openvla_oft"),
    ({"action_chunk": 0}, "action_chunk"),
    ({"lora": {"rank": 0}}, "rank"),
    ({"lora": {"target_modules": []}}, "target_modules"),
    ({"policy_gripper_range": "binary"}, "policy_gripper_range"),
    ({"sizee": "tiny"}, "unknown key model.sizee"),
])
def test_bad_values_name_the_key_and_the_fix(raw, message):
    with pytest.raises(ConfigError, match=message):
        from_dict(ModelConfig, raw, prefix="model")
