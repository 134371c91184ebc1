"""Typed `model` and `env` sections chosen by `model.family` / `env.backend`, and the migration of saved layouts."""

from __future__ import annotations

import copy
import pickle
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from vla_rl.config.backends.libero import LiberoEnvConfig
from vla_rl.config.backends.maniskill import ManiSkillEnvConfig
from vla_rl.config.core import ConfigError, from_dict, to_dict
from vla_rl.config.env import EnvConfig
from vla_rl.config.families.cnn import CNNConfig
from vla_rl.config.families.openvla import OpenVLAConfig
from vla_rl.config.families.openvla_oft import OpenVLAOFTConfig
from vla_rl.config.loader import dump_config, load_config
from vla_rl.config.model import ModelConfig
from vla_rl.config.warmstart import WarmstartConfig

LAYOUT_1 = Path(__file__).parent / "layout1"


def test_the_selector_picks_the_class_whether_built_or_loaded():
    assert type(ModelConfig()) is OpenVLAConfig and type(EnvConfig()) is ManiSkillEnvConfig
    cnn = ModelConfig(family="cnn", action_chunk=3, use_proprio=True)
    assert type(cnn) is CNNConfig and cnn.action_chunk == 3
    assert type(from_dict(ModelConfig, {"family": "openvla_oft", "bidirectional_prompt": True})) is OpenVLAOFTConfig
    assert type(from_dict(EnvConfig, {"backend": "libero", "settle_steps": 0})) is LiberoEnvConfig
    assert pickle.loads(pickle.dumps(cnn)) == cnn and copy.deepcopy(cnn) == cnn  # (workers get configs by pickle)
    assert OpenVLAConfig().action_chunk == 1  # a derived value, not a key
    with pytest.raises(ConfigError, match="not a kind of CNNConfig"):
        replace(cnn, family="openvla")


@pytest.mark.parametrize("override, message", [
    ("model.family=pi9", r"model.family='pi9' is not registered; choose one of \['cnn', 'openvla', 'openvla_oft', 'pi0'\]"),
    ("env.backend=isaac", r"env.backend='isaac' is not registered; choose one of \['libero', 'maniskill', 'maniskill_gpu'\]"),
    ("model.max_prompt_tokens=64", r"model.max_prompt_tokens is read only with model.family in \['openvla', "
                                   r"'openvla_oft', 'pi0'\], so it cannot act with model.family=cnn"),
    ("env.settle_steps=5", r"env.settle_steps is read only with env.backend in \['libero'\]"),
])
def test_unregistered_names_and_keys_of_another_choice_are_config_errors(override, message):
    with pytest.raises(ConfigError, match=message) as caught:
        load_config("quickstart", [override])
    assert "command line" in str(caught.value)


def test_switching_family_or_backend_drops_only_the_inherited_keys():
    # quickstart sets ManiSkill's spawn_scale and mesh_detail; a LIBERO run on top of it starts without them.
    libero = load_config("quickstart", ["env.backend=libero", "env.task=libero_spatial/0", "model.family=openvla"])
    assert type(libero.env) is LiberoEnvConfig and type(libero.model) is OpenVLAConfig
    with pytest.raises(ConfigError, match="env.spawn_scale is read only"):  # ... but one set beside the switch stays
        load_config("quickstart", ["env.spawn_scale=0.5", "env.backend=libero", "env.task=libero_spatial/0"])


def test_old_key_names_still_load():
    cfg = load_config("quickstart", ["model.family=openvla_oft", "model.oft_bidirectional_prompt=true"])
    assert cfg.model.bidirectional_prompt is True


def test_a_layout_1_run_config_loads_as_it_ran(tmp_path):
    # Saved by `vla-rl train quickstart` before the typed sections: every flat key, inert ones included.
    path = LAYOUT_1 / "quickstart.yaml"
    expected = yaml.safe_load(path.read_text())
    inert = {"model": ("max_prompt_tokens", "oft_bidirectional_prompt"), "env": ("settle_steps",)}  # cnn, maniskill
    for section, keys in inert.items():
        for key in keys:
            del expected[section][key]
    loaded = to_dict(load_config(str(path)))
    for section, body in expected.items():  # every key that could act keeps its value (later keys: defaults)
        assert {key: loaded[section][key] for key in body} == body, section
    assert not any(key in loaded[section] for section, keys in inert.items() for key in keys)
    oft = load_config(str(LAYOUT_1 / "libero_oft.yaml"))
    assert type(oft.env) is LiberoEnvConfig and oft.env.settle_steps == 10
    assert (oft.model.action_chunk, oft.model.use_proprio, oft.model.bidirectional_prompt) == (4, True, True)
    assert oft.model.max_prompt_tokens == 64
    assert oft.warmstart.demos_dir == "/tmp/demos" and oft.warmstart.demos == WarmstartConfig().demos
    # and today's dump of it loads to the same config
    (tmp_path / "config.yaml").write_text(dump_config(oft))
    assert load_config(str(tmp_path / "config.yaml")) == oft


def test_demo_generation_keys_beside_demos_dir_are_refused():
    with pytest.raises(ConfigError, match="warmstart.demos=16 has no effect because warmstart.demos_dir is set"):
        load_config("quickstart", ["warmstart.demos_dir=/tmp/demos"])
    assert load_config("quickstart", ["warmstart.demos_dir=/tmp/d", "warmstart.demos=32"]).warmstart.demos_dir == "/tmp/d"
    read = WarmstartConfig(demos=16, demo_noise=0.1).reading("/tmp/d")
    assert (read.demos, read.demo_noise, read.demos_dir) == (32, 0.0, "/tmp/d")


def test_a_build_key_the_checkpoint_fixes_must_match_it(tmp_path):
    from vla_rl.models.registry import build_policy

    facts = dict(action_dim=7, cameras=("main",), proprio_dim=9, seed=0)
    build_policy(ModelConfig(family="cnn", action_chunk=3, use_proprio=True), **facts).save_pretrained(str(tmp_path))
    # Left at the default, or equal to the checkpoint's: loads the checkpoint as saved.
    assert build_policy(ModelConfig(family="cnn", pretrained=str(tmp_path)), **facts).action_chunk == 3
    same = build_policy(ModelConfig(family="cnn", pretrained=str(tmp_path), action_chunk=3, use_proprio=True), **facts)
    assert same.action_chunk == 3 and same.reads_proprio
    with pytest.raises(ConfigError, match=r"model.action_chunk=2 cannot act: .* was built with action_chunk=3"):
        build_policy(ModelConfig(family="cnn", pretrained=str(tmp_path), action_chunk=2), **facts)
