"""Every registered loss declares exactly the arguments its function takes, under names that exist where
they are read from: the rollout buffer, `policy.evaluate`'s output and `AlgorithmConfig`."""

from __future__ import annotations

import dataclasses
import inspect

import pytest

from vla_rl.algorithms import ACTOR_INPUTS, POLICY_LOSSES, VALUE_INPUTS, LossInputs
from vla_rl.config.algorithm import NAME_USES_CRITIC, AlgorithmConfig
from vla_rl.models.base import EvaluateOutput

CONFIG_FIELDS = {f.name for f in dataclasses.fields(AlgorithmConfig)}
LEARNER_KEYS = {"old_logprobs", "values", "advantages", "returns", "action_mask", "traj_ids"}
"""What the collector (old_logprobs, values) and `compute_advantages` (the rest) write into the buffer."""


@pytest.mark.parametrize("name", POLICY_LOSSES.names())
def test_declared_inputs_are_the_functions_arguments(name):
    loss = POLICY_LOSSES.get(name)
    assert set(inspect.signature(loss.fn).parameters) == loss.inputs.arguments
    assert set(loss.inputs.hyperparameters) <= CONFIG_FIELDS
    assert set(loss.inputs.evaluates) <= {f.name for f in dataclasses.fields(EvaluateOutput)}
    assert set(loss.inputs.reads.values()) <= LEARNER_KEYS
    assert loss.needs_critic == NAME_USES_CRITIC[name]


def test_bind_reads_the_config_under_its_own_names():
    grpo = AlgorithmConfig(name="grpo", advantage="grpo", clip_ratio_high=0.28, loss_agg="traj_equal", kl_coef=0.1)
    bound = POLICY_LOSSES.get("grpo").bind(grpo)
    assert bound == {"logprob_granularity": "token", "loss_agg": "traj_equal", "clip_ratio": 0.2,
                     "clip_ratio_high": 0.28, "dual_clip": 3.0, "entropy_coef": 0.0, "kl_coef": 0.1,
                     "kl_estimator": "k3"}
    ppo = POLICY_LOSSES.get("ppo").bind(AlgorithmConfig(value_clip=None, huber_delta=1.0))
    assert (ppo["clip_ratio_high"], ppo["value_clip"], ppo["huber_delta"], ppo["vf_coef"]) == (None, None, 1.0, 0.5)


def test_ppo_reads_the_actor_and_the_value_term():
    both = ACTOR_INPUTS | VALUE_INPUTS
    assert POLICY_LOSSES.get("ppo").inputs == both
    assert both.reads == {**ACTOR_INPUTS.reads, "old_values": "values", "returns": "returns"}
    assert both.evaluates == ("logprobs", "entropy", "values") and both.reference
    assert both.arguments == ACTOR_INPUTS.arguments | VALUE_INPUTS.arguments
    assert (LossInputs() | LossInputs(evaluates=("values",))).arguments == {"values"}
