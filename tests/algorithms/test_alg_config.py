"""AlgorithmConfig: defaults, from_dict, cross-field checks, inert options, registry consistency."""

import ast
import dataclasses
import inspect
from pathlib import Path
from typing import get_args, get_type_hints

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vla_rl.algorithms import (
    ADVANTAGE_ESTIMATORS,
    KL_ESTIMATORS,
    LOGPROB_GRANULARITIES,
    LOSS_AGGREGATIONS,
    POLICY_LOSSES,
    REWARD_GRANULARITIES,
)
from vla_rl.config import algorithm as algorithm_module
from vla_rl.config.algorithm import ESTIMATOR_NEEDS_CRITIC, NAME_USES_CRITIC, AlgorithmConfig
from vla_rl.config.core import ConfigError, from_dict, to_dict

GRPO = {"name": "grpo", "advantage": "grpo", "clip_ratio_high": 0.28, "loss_agg": "traj_equal"}


def build(data):
    return from_dict(AlgorithmConfig, data, prefix="algorithm")


def test_defaults_are_the_ppo_recipe():
    cfg = build({})
    assert (cfg.name, cfg.advantage, cfg.uses_critic, cfg.uses_groups) == ("ppo", "gae", True, False)
    assert (cfg.clip_ratio, cfg.clip_ratio_high, cfg.dual_clip, cfg.value_clip) == (0.2, None, 3.0, 0.2)
    assert (cfg.gamma, cfg.gae_lambda, cfg.lr, cfg.value_lr) == (0.99, 0.95, 1e-4, 3e-3)


def test_grpo_recipe_builds():
    cfg = build(GRPO)
    assert not cfg.uses_critic and cfg.uses_groups and cfg.clip_ratio_high == 0.28 and cfg.group_size == 8
    assert build({**GRPO, "advantage": "rloo", "grpo_std_normalize": False}).advantage == "rloo"
    assert build(to_dict(cfg)) == cfg


def test_unknown_key_and_wrong_type():
    with pytest.raises(ConfigError, match=r"unknown key algorithm\.clip_eps \(known keys in algorithm: adv_eps"):
        build({"clip_eps": 0.2})
    with pytest.raises(ConfigError, match=r"algorithm\.name='dqn' is not one of 'ppo' \| 'grpo' \| 'rloo'"):
        build({"name": "dqn"})
    with pytest.raises(ConfigError, match="must be an integer"):
        build({**GRPO, "group_size": 8.5})


@pytest.mark.parametrize(
    "data, message",
    [
        ({"name": "grpo"}, "advantage='gae' needs a critic but name='grpo' has none"),
        ({"advantage": "grpo"}, "name='ppo' trains a critic that advantage='grpo' never reads"),
        ({**GRPO, "group_size": 1}, "group_size=1: group advantages need >= 2"),
        ({"clip_ratio": 0.0}, "clip_ratio=0.0 must be in"),
        ({"clip_ratio": 1.0}, "clip_ratio=1.0 must be in"),
        ({"clip_ratio_high": -0.1}, "clip_ratio_high=-0.1 must be > 0"),
        ({"dual_clip": 1.0}, "dual_clip=1.0 must be > 1"),
        ({"value_clip": 0.0}, "value_clip=0.0 must be > 0"),
        ({"huber_delta": -1.0}, "huber_delta=-1.0 must be > 0"),
        ({"gamma": 1.5}, r"gamma=1.5 must be in \(0, 1\]"),
        ({"gae_lambda": -0.1}, "gae_lambda=-0.1 must be in"),
        ({"entropy_coef": -0.01}, "entropy_coef=-0.01 must be >= 0"),
        ({"adv_eps": 0.0}, "adv_eps=0.0 must be > 0"),
        ({"update_epochs": 0}, "update_epochs and num_minibatches must be >= 1"),
        ({"lr": 0.0}, "lr and value_lr must be > 0"),
        ({"max_grad_norm": 0.0}, "max_grad_norm=0.0 must be > 0"),
        ({"target_kl": -1.0}, "target_kl=-1.0 must be > 0"),
    ],
)
def test_bad_combinations_are_errors(data, message):
    with pytest.raises(ConfigError, match=message):
        build(data)


@pytest.mark.parametrize(
    "data, message",
    [
        ({**GRPO, "vf_coef": 1.0}, "vf_coef=1.0 has no effect because name='grpo' trains no critic"),
        ({**GRPO, "value_clip": None}, "value_clip=None has no effect"),
        ({**GRPO, "huber_delta": 10.0}, "huber_delta=10.0 has no effect"),
        ({**GRPO, "value_lr": 1e-3}, "value_lr=0.001 has no effect"),
        ({**GRPO, "gamma": 0.9}, "gamma=0.9 has no effect because advantage='grpo' uses undiscounted"),
        ({**GRPO, "gae_lambda": 1.0}, "gae_lambda=1.0 has no effect"),
        ({**GRPO, "reward_granularity": "action"}, "reward_granularity='action' has no effect"),
        ({"group_size": 4}, "group_size=4 has no effect because advantage='gae' forms no groups"),
        ({"grpo_std_normalize": False}, "grpo_std_normalize=False has no effect"),
        ({"filter_equal_groups": False}, "filter_equal_groups=False has no effect"),
        ({"kl_estimator": "k1"}, "kl_estimator='k1' has no effect because kl_coef is 0"),
        ({"normalize_advantages": False, "adv_eps": 1e-8}, "adv_eps=1e-08 has no effect"),
    ],
)
def test_inert_options_are_errors(data, message):
    with pytest.raises(ConfigError, match=message):
        build(data)


def test_inert_rule_does_not_fire_when_the_option_acts():
    assert build({"kl_coef": 0.1, "kl_estimator": "k1"}).kl_estimator == "k1"
    assert build({**GRPO, "normalize_advantages": False, "adv_eps": 1e-8}).adv_eps == 1e-8  # group std uses it
    assert build({"huber_delta": 10.0, "reward_granularity": "action"}).huber_delta == 10.0


FIELD_VALUES = {
    "name": st.sampled_from(["ppo", "grpo", "rloo"]),
    "advantage": st.sampled_from(["gae", "grpo", "rloo"]),
    "gamma": st.sampled_from([0.0, 0.9, 0.99, 1.0, 1.2]),
    "group_size": st.integers(0, 9),
    "clip_ratio": st.sampled_from([0.0, 0.1, 0.2, 1.0]),
    "clip_ratio_high": st.sampled_from([None, -0.1, 0.28]),
    "dual_clip": st.sampled_from([None, 0.5, 1.0, 3.0]),
    "value_clip": st.sampled_from([None, 0.2, 0.5]),
    "kl_coef": st.sampled_from([0.0, 0.1]),
    "kl_estimator": st.sampled_from(["k1", "k3"]),
    "normalize_advantages": st.booleans(),
    "grpo_std_normalize": st.booleans(),
    "loss_agg": st.sampled_from(["token_mean", "seq_mean", "traj_equal"]),
}


@settings(max_examples=150, deadline=None)
@given(st.fixed_dictionaries({}, optional=FIELD_VALUES))
def test_any_setting_either_builds_consistently_or_is_a_config_error(data):
    try:
        cfg = build(data)
    except ConfigError as exc:
        assert str(exc).startswith("algorithm: ")
        return
    assert cfg.uses_critic == ESTIMATOR_NEEDS_CRITIC[cfg.advantage]
    assert POLICY_LOSSES.get(cfg.name).needs_critic == cfg.uses_critic
    assert not cfg.uses_groups or cfg.group_size >= 2
    assert cfg.clip_ratio_high is None or cfg.clip_ratio_high > 0
    assert 0 < cfg.clip_ratio < 1 and (cfg.dual_clip is None or cfg.dual_clip > 1)
    assert build(to_dict(cfg)) == cfg


def literal_choices(field):
    return set(get_args(get_type_hints(AlgorithmConfig)[field]))


@pytest.mark.parametrize(
    "field, registry",
    [
        ("name", POLICY_LOSSES),
        ("advantage", ADVANTAGE_ESTIMATORS),
        ("kl_estimator", KL_ESTIMATORS),
        ("logprob_granularity", LOGPROB_GRANULARITIES),
        ("reward_granularity", REWARD_GRANULARITIES),
        ("loss_agg", LOSS_AGGREGATIONS),
    ],
)
def test_config_choices_equal_registry_names(field, registry):
    assert literal_choices(field) == set(registry.names())


def test_critic_tables_mirror_the_registries():
    assert NAME_USES_CRITIC == {n: POLICY_LOSSES.get(n).needs_critic for n in POLICY_LOSSES.names()}
    assert ESTIMATOR_NEEDS_CRITIC == {n: ADVANTAGE_ESTIMATORS.get(n).needs_critic for n in ADVANTAGE_ESTIMATORS.names()}


def test_every_field_has_a_one_line_docstring_and_a_docs_row():
    tree = ast.parse(inspect.getsource(algorithm_module))
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "AlgorithmConfig")
    documented = {
        stmt.target.id
        for stmt, nxt in zip(cls.body, cls.body[1:])
        if isinstance(stmt, ast.AnnAssign) and isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant)
        and "\n" not in nxt.value.value.strip()
    }
    names = {f.name for f in dataclasses.fields(AlgorithmConfig)}
    assert documented == names
    docs = (Path(__file__).resolve().parents[2] / "docs" / "algorithms.md").read_text()
    missing = [n for n in names if f"| `{n}` |" not in docs]
    assert not missing, f"docs/algorithms.md has no table row for {missing}"
