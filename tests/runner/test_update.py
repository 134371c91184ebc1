"""vla_rl/runner/update.py itself: `compute_advantages` and `update_policy` on small buffers, checked
against numbers worked out by hand or by the naive per-step GAE loop of tests/algorithms/test_alg_gae.py.

The policy is a table: one free log-prob per stored sample (and one free value), so the ratio of each
sample is set exactly and every gradient the loss gives can be read off the table after the step. The
engine is the real `SingleEngine` (AdamW), the buffer the real `RolloutBuffer`, the losses and
estimators the registered ones.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from algorithms.test_alg_gae import reference_gae  # the naive per-step GAE loop (tests/ is on sys.path)
from vla_rl.config.algorithm import AlgorithmConfig
from vla_rl.config.schema import RolloutConfig
from vla_rl.engines.single import SingleEngine
from vla_rl.models.base import EvaluateOutput
from vla_rl.runner.buffer import RolloutBuffer
from vla_rl.runner.update import compute_advantages, update_policy

GRPO = dict(name="grpo", advantage="grpo")


class TablePolicy(nn.Module):
    """`evaluate` returns row `sample` of a parameter table: log-probs (S, K, A) and values (S,)."""

    def __init__(self, logprobs: torch.Tensor, values: torch.Tensor | None = None) -> None:
        super().__init__()
        self.logprobs = nn.Parameter(logprobs.clone().float())
        self.value_head = None if values is None else nn.Parameter(values.clone().float())
        self.seen: list[list[int]] = []
        """The sample ids of each `evaluate` call, in call order."""

    def evaluate(self, forward_inputs: dict[str, torch.Tensor], temperature: float = 1.0) -> EvaluateOutput:
        index = forward_inputs["sample"]
        self.seen.append(index.tolist())
        lp = self.logprobs[index]
        return EvaluateOutput(lp, torch.zeros_like(lp), None if self.value_head is None else self.value_head[index])


def engine_for(policy: nn.Module, algo: AlgorithmConfig) -> SingleEngine:
    return SingleEngine(policy, lr=algo.lr, value_lr=algo.value_lr, weight_decay=algo.weight_decay,
                        max_grad_norm=algo.max_grad_norm)


def filled_buffer(t: int, n: int, k: int = 1, a: int = 1, *, rewards=None, terminated=None, truncated=None,
                  values=None, bootstrap=None) -> RolloutBuffer:
    """A (t, n) window whose forward inputs are the sample ids t * n + env; old log-probs all 0."""
    buffer = RolloutBuffer(t, n)
    zeros = torch.zeros(t, n, k)
    rewards = zeros if rewards is None else rewards
    terminated = zeros.bool() if terminated is None else terminated
    truncated = zeros.bool() if truncated is None else truncated
    values = torch.zeros(t, n) if values is None else values
    bootstrap = torch.zeros(t, n) if bootstrap is None else bootstrap
    for step in range(t):
        buffer.add({"sample": torch.arange(n) + step * n}, old_logprobs=torch.zeros(n, k, a), values=values[step],
                   step_rewards=rewards[step], step_terminated=terminated[step], step_truncated=truncated[step],
                   bootstrap_values=bootstrap[step])
    return buffer


def set_targets(buffer: RolloutBuffer, advantages, mask=None, returns=None) -> None:
    """Write what `compute_advantages` would: advantages, returns, action mask, trajectory ids."""
    t, n = buffer.t, buffer.num_envs
    buffer["advantages"] = torch.as_tensor(advantages, dtype=torch.float32).reshape(t, n)
    buffer["returns"] = torch.zeros(t, n) if returns is None else torch.as_tensor(returns).float().reshape(t, n)
    k = buffer["old_logprobs"].shape[2]
    mask = torch.ones(t, n, dtype=torch.bool) if mask is None else torch.as_tensor(mask).reshape(t, n)
    buffer["action_mask"] = mask[..., None].expand(t, n, k).contiguous()
    buffer["traj_ids"] = torch.arange(n)[None].expand(t, n).contiguous()


def update(algo, policy, buffer, seed=0, ref_policy=None):
    return update_policy(algo, RolloutConfig(), policy, engine_for(policy, algo), buffer,
                         torch.Generator().manual_seed(seed), ref_policy=ref_policy)


# ----------------------------------------------------------------------------------------------- update


def test_clipped_loss_matches_hand_computation_and_clipped_samples_get_no_gradient():
    # ratios and advantages chosen to hit each case of the clipped objective (clip 0.2, dual clip 3):
    # r=1.5, A=+1: clipped at 1.2 -> -1.2 | r=0.5, A=-1: clipped at 0.8 -> 0.8 | r=1.1, A=-1: inside -> 1.1
    # r=0.9, A=+1: inside -> -0.9 | r=4, A=-1: 4, dual-capped at 3 -> 3 | sample 5 is masked out.
    ratios = torch.tensor([1.5, 0.5, 1.1, 0.9, 4.0, 10.0])
    advantages = [1.0, -1.0, -1.0, 1.0, -1.0, 5.0]
    algo = AlgorithmConfig(**GRPO, num_minibatches=1, normalize_advantages=False)
    buffer = filled_buffer(1, 6)
    set_targets(buffer, advantages, mask=[True] * 5 + [False])
    policy = TablePolicy(ratios.log()[:, None, None])
    before = policy.logprobs.detach().clone().flatten()

    metrics = update(algo, policy, buffer)

    expected = (-1.2 + 0.8 + 1.1 - 0.9 + 3.0) / 5
    assert metrics["train/loss"] == pytest.approx(expected, abs=1e-6)
    assert metrics["train/policy_loss"] == pytest.approx(expected, abs=1e-6)
    assert metrics["train/clip_fraction"] == pytest.approx(2 / 5)
    assert metrics["train/dual_clip_fraction"] == pytest.approx(1 / 5)
    used = ratios[:5]
    assert metrics["train/approx_kl"] == pytest.approx(float((used - 1 - used.log()).mean()), rel=1e-5)
    assert metrics["train/minibatch_updates"] == 1.0 and metrics["train/kl_early_stop"] == 0.0
    after = policy.logprobs.detach().flatten()
    # only the two unclipped samples move: r=1.1 with A<0 down, r=0.9 with A>0 up; the clipped, the
    # dual-capped and the masked samples get no gradient, so AdamW leaves them bit for bit as they were
    assert torch.equal(after[[0, 1, 4, 5]], before[[0, 1, 4, 5]])
    assert after[2] < before[2] and after[3] > before[3]


def test_ppo_adds_the_clipped_value_loss():
    # all ratios 1: the policy term is -mean(A); value clip 0.2 around the stored values 0:
    # v=0.5, R=1: max(0.5*0.5^2, 0.5*(0.2-1)^2) = 0.32 | v=0.1, R=1: 0.405 (inside the clip)
    # v=-0.3, R=-1: max(0.245, 0.5*(-0.2+1)^2) = 0.32
    algo = AlgorithmConfig(name="ppo", advantage="gae", num_minibatches=1, normalize_advantages=False,
                           vf_coef=0.5, value_clip=0.2)
    buffer = filled_buffer(1, 3)
    set_targets(buffer, [1.0, -2.0, 4.0], returns=[1.0, 1.0, -1.0])
    policy = TablePolicy(torch.zeros(3, 1, 1), values=torch.tensor([0.5, 0.1, -0.3]))
    metrics = update(algo, policy, buffer)
    vf = (0.32 + 0.405 + 0.32) / 3
    assert metrics["train/vf_loss"] == pytest.approx(vf, abs=1e-6)
    assert metrics["train/value_loss"] == pytest.approx(0.5 * vf, abs=1e-6)
    assert metrics["train/value_clip_fraction"] == pytest.approx(2 / 3)
    assert metrics["train/loss"] == pytest.approx(-(1.0 - 2.0 + 4.0) / 3 + 0.5 * vf, abs=1e-6)


def test_epochs_times_minibatches_updates_each_epoch_covering_every_sample_once():
    algo = AlgorithmConfig(**GRPO, update_epochs=3, num_minibatches=2)
    buffer = filled_buffer(4, 3)
    set_targets(buffer, torch.linspace(-1, 1, 12))
    policy = TablePolicy(torch.zeros(12, 1, 1))
    metrics = update(algo, policy, buffer)
    assert metrics["train/minibatch_updates"] == 6.0 and metrics["train/kl_early_stop"] == 0.0
    assert len(policy.seen) == 6
    for epoch in range(3):
        ids = policy.seen[2 * epoch] + policy.seen[2 * epoch + 1]
        assert sorted(ids) == list(range(12)), f"epoch {epoch} did not see every sample exactly once"
    assert policy.seen[0] != policy.seen[2], "every epoch draws its own minibatches"


def test_traj_equal_minibatches_hold_whole_environment_columns():
    algo = AlgorithmConfig(**GRPO, loss_agg="traj_equal", num_minibatches=3)
    buffer = filled_buffer(4, 3)
    set_targets(buffer, torch.linspace(-1, 1, 12))
    policy = TablePolicy(torch.zeros(12, 1, 1))
    update(algo, policy, buffer)
    columns = sorted(sorted(ids) for ids in policy.seen)
    assert columns == [[env + 3 * t for t in range(4)] for env in range(3)]


def test_more_minibatches_than_samples_or_columns_is_refused():
    buffer = filled_buffer(2, 2)
    set_targets(buffer, [1.0, -1.0, 1.0, -1.0])
    with pytest.raises(ValueError, match="num_minibatches=5 exceeds the 4 samples"):
        update(AlgorithmConfig(**GRPO, num_minibatches=5), TablePolicy(torch.zeros(4, 1, 1)), buffer)
    with pytest.raises(ValueError, match="num_minibatches=3 exceeds env.num_envs=2"):
        update(AlgorithmConfig(**GRPO, num_minibatches=3, loss_agg="traj_equal"), TablePolicy(torch.zeros(4, 1, 1)),
               buffer)


@pytest.mark.parametrize("target_kl, updates, stopped", [(0.01, 1, 1.0), (1.0, 4, 0.0)])
def test_target_kl_stops_after_the_first_minibatch_over_it(target_kl, updates, stopped):
    # every ratio is 2 at the start: approx_kl = 2 - 1 - log 2 = 0.307 on the first minibatch
    algo = AlgorithmConfig(**GRPO, update_epochs=2, num_minibatches=2, target_kl=target_kl)
    buffer = filled_buffer(2, 4)
    set_targets(buffer, torch.linspace(-1, 1, 8))
    policy = TablePolicy(torch.full((8, 1, 1), math.log(2.0)))
    metrics = update(algo, policy, buffer)
    assert metrics["train/minibatch_updates"] == updates and len(policy.seen) == updates
    assert metrics["train/kl_early_stop"] == stopped
    if stopped:
        assert metrics["train/approx_kl"] == pytest.approx(1 - math.log(2.0), rel=1e-5)


def test_reference_kl_is_reported_in_the_first_epoch_and_penalised_only_with_kl_coef():
    buffer = filled_buffer(1, 4)
    set_targets(buffer, [1.0, -1.0, 0.5, -0.5])
    ref_lp = torch.tensor([-0.5, 0.0, 0.25, 0.0])[:, None, None]
    k3 = float(((ref_lp - 0).exp() - 1 - (ref_lp - 0)).mean())  # the policy starts at log-prob 0 everywhere
    ref = TablePolicy(ref_lp)
    metrics = update(AlgorithmConfig(**GRPO, num_minibatches=1), TablePolicy(torch.zeros(4, 1, 1)), buffer,
                     ref_policy=ref)
    assert metrics["train/ref_kl"] == pytest.approx(k3, rel=1e-5)
    assert metrics["train/kl_loss"] == 0.0 and "train/kl" not in metrics
    algo = AlgorithmConfig(**GRPO, num_minibatches=1, kl_coef=0.1)
    metrics = update(algo, TablePolicy(torch.zeros(4, 1, 1)), buffer, ref_policy=ref)
    assert metrics["train/kl"] == pytest.approx(k3, rel=1e-5)
    assert metrics["train/kl_loss"] == pytest.approx(0.1 * k3, rel=1e-5)
    with pytest.raises(ValueError, match="kl_coef > 0 needs a frozen reference policy"):
        update(algo, TablePolicy(torch.zeros(4, 1, 1)), buffer)


# ------------------------------------------------------------------------------------------- advantages


@pytest.mark.parametrize("normalize", [False, True])
def test_window_advantages_match_a_naive_gae_loop(normalize):
    gen = torch.Generator().manual_seed(3)
    t_len, n = 6, 3
    rewards = torch.rand(t_len, n, 1, generator=gen)
    terminated = torch.zeros(t_len, n, 1, dtype=torch.bool)
    truncated = torch.zeros(t_len, n, 1, dtype=torch.bool)
    terminated[1, 0] = terminated[4, 2] = True
    truncated[3, 1] = truncated[2, 0] = True
    values, bootstrap, last = torch.randn(t_len, n, generator=gen), torch.randn(t_len, n, generator=gen), torch.randn(n)
    buffer = filled_buffer(t_len, n, rewards=rewards, terminated=terminated, truncated=truncated, values=values,
                           bootstrap=bootstrap)
    algo = AlgorithmConfig(gamma=0.9, gae_lambda=0.8, normalize_advantages=normalize)
    metrics = compute_advantages(algo, buffer, last)

    adv = reference_gae(rewards[..., 0], values, terminated[..., 0], truncated[..., 0], bootstrap, last, 0.9, 0.8)
    ret = adv + values.double()
    torch.testing.assert_close(buffer["returns"].double(), ret, rtol=1e-5, atol=1e-5)
    if normalize:
        adv = (adv - adv.mean()) / (adv.std() + algo.adv_eps)
    torch.testing.assert_close(buffer["advantages"].double(), adv, rtol=1e-5, atol=1e-5)
    assert metrics["train/returns/mean"] == pytest.approx(float(ret.mean()), rel=1e-5)
    # a new trajectory id starts after each done; every action of a one-action chunk is executed
    assert buffer["traj_ids"][:, 0].tolist() == [0, 0, 1, 2, 2, 2]
    assert buffer["traj_ids"][:, 1].tolist() == [6, 6, 6, 6, 7, 7]
    assert bool(buffer["action_mask"].all())


def test_group_advantages_filter_equal_groups_and_their_samples_get_no_gradient():
    # groups {0, 1} and {2, 3}; env 0 succeeds at step 0 (its step-1 reward of 5 is padding), env 1 fails;
    # both envs of group 1 succeed: equal returns, the group is filtered out of the loss
    rewards = torch.tensor([[1.0, 0.0, 0.0, 1.0], [5.0, 0.0, 1.0, 0.0]])[..., None]
    terminated = torch.tensor([[True, False, False, True], [False, False, True, False]])[..., None]
    truncated = torch.tensor([[False, False, False, False], [False, True, False, True]])[..., None]
    buffer = filled_buffer(2, 4, rewards=rewards, terminated=terminated, truncated=truncated)
    buffer["group_ids"] = torch.tensor([0, 0, 1, 1])
    algo = AlgorithmConfig(**GRPO, group_size=2, normalize_advantages=False, num_minibatches=1)
    metrics = compute_advantages(algo, buffer, None)

    assert metrics["train/filtered_group_fraction"] == 0.5
    std = math.sqrt(0.5)  # returns 1 and 0: Bessel std of the group
    expected = torch.tensor([0.5, -0.5, 0.0, 0.0]) / (std + algo.adv_eps)
    torch.testing.assert_close(buffer["advantages"], expected[None].expand(2, 4), rtol=1e-6, atol=1e-6)
    assert buffer["returns"][0].tolist() == [1.0, 0.0, 1.0, 1.0]
    mask = buffer["action_mask"][..., 0]
    assert mask.tolist() == [[True, True, False, False], [False, True, False, False]]

    policy = TablePolicy(torch.zeros(8, 1, 1))
    update(algo, policy, buffer)
    moved = policy.logprobs.detach().flatten() != 0
    assert moved.tolist() == mask.flatten().tolist(), "exactly the unmasked samples of the kept group move"


def test_estimators_refuse_the_wrong_rollout_kind():
    buffer = filled_buffer(2, 2)
    with pytest.raises(ValueError, match="needs a continuing rollout window"):
        compute_advantages(AlgorithmConfig(), buffer, None)
    with pytest.raises(ValueError, match="needs fixed-length grouped episodes"):
        compute_advantages(AlgorithmConfig(**GRPO, group_size=2), buffer, None)
