"""The PPO and GRPO update flows of docs/algorithms.md, end to end on a small torch policy.

The policy here is a real (tiny) categorical model over action tokens with a value head, enough to
produce (N, K, A) log-probs, entropy and (N,) values with gradients; the rollout tensors are
synthetic. The algorithm functions under test run unmodified.
"""

import torch
from torch import nn

from vla_rl.algorithms import (
    ADVANTAGE_ESTIMATORS,
    POLICY_LOSSES,
    action_mask_from_dones,
    broadcast_trajectory_advantages,
    gae,
    group_ids_from_size,
    mean_metrics,
    normalize_advantages,
    reduce_chunk_rewards,
    rollout_metrics,
    trajectory_ids,
    trajectory_returns,
    valid_mask,
)
from vla_rl.config.algorithm import AlgorithmConfig

T, N_ENV, K, A, VOCAB, OBS = 6, 8, 2, 3, 5, 4


class TinyPolicy(nn.Module):
    def __init__(self):
        super().__init__()
        self.logits = nn.Linear(OBS, K * A * VOCAB)
        self.value = nn.Linear(OBS, 1)

    def dist(self, obs):
        return torch.distributions.Categorical(logits=self.logits(obs).reshape(-1, K, A, VOCAB))

    def act(self, obs):
        with torch.no_grad():
            d = self.dist(obs)
            tokens = d.sample()
            return tokens, d.log_prob(tokens), self.value(obs).squeeze(-1)

    def evaluate(self, obs, tokens):
        d = self.dist(obs)
        return d.log_prob(tokens), d.entropy(), self.value(obs).squeeze(-1)


def rollout(policy, gen):
    obs = torch.randn(T, N_ENV, OBS, generator=gen)
    tokens, logprobs, values = policy.act(obs.reshape(-1, OBS))
    step_rewards = (tokens[..., 0] == 0).float().reshape(T, N_ENV, K)
    terminated = torch.rand(T, N_ENV, K, generator=gen) < 0.05
    truncated = torch.rand(T, N_ENV, K, generator=gen) < 0.05
    return obs, tokens, logprobs, values.reshape(T, N_ENV), step_rewards, terminated, truncated


def loss_args(cfg):
    return dict(logprob_granularity=cfg.logprob_granularity, loss_agg=cfg.loss_agg, clip_ratio=cfg.clip_ratio,
                clip_ratio_high=cfg.clip_ratio_high, dual_clip=cfg.dual_clip, entropy_coef=cfg.entropy_coef,
                kl_coef=cfg.kl_coef, kl_estimator=cfg.kl_estimator)


def test_ppo_flow():
    cfg = AlgorithmConfig(reward_granularity="action", logprob_granularity="action", loss_agg="traj_equal",
                          entropy_coef=0.01, update_epochs=2)
    gen = torch.Generator().manual_seed(0)
    policy = TinyPolicy()
    opt = torch.optim.AdamW(policy.parameters(), lr=1e-2)
    obs, tokens, old_logprobs, values, step_r, term, trunc = rollout(policy, gen)
    chunk = reduce_chunk_rewards(step_r, term, trunc, cfg.gamma, cfg.reward_granularity)
    bootstrap = policy.act(torch.randn(T * N_ENV, OBS, generator=gen))[2].reshape(T, N_ENV)
    last = policy.act(torch.randn(N_ENV, OBS, generator=gen))[2]
    adv, ret = gae(chunk.rewards, values, chunk.terminated, chunk.truncated, bootstrap, last, chunk.discounts, cfg.gae_lambda)
    action_mask = action_mask_from_dones(term, trunc).reshape(-1, K)
    traj = trajectory_ids(chunk.terminated | chunk.truncated).flatten()
    metrics = rollout_metrics(adv, ret, values=values)
    if cfg.normalize_advantages:
        adv = normalize_advantages(adv, torch.ones_like(adv, dtype=torch.bool), cfg.adv_eps)
    adv, ret, values = adv.flatten(), ret.flatten(), values.flatten()
    flat_obs = obs.reshape(-1, OBS)
    per_mb = []
    for _ in range(cfg.update_epochs):
        for mb in torch.randperm(T * N_ENV, generator=gen).chunk(cfg.num_minibatches):
            lp, ent, v = policy.evaluate(flat_obs[mb], tokens[mb])
            out = POLICY_LOSSES.get(cfg.name).fn(
                logprobs=lp, old_logprobs=old_logprobs[mb], advantages=adv[mb], action_mask=action_mask[mb],
                entropy=ent, ref_logprobs=None, traj_ids=traj[mb], values=v, old_values=values[mb], returns=ret[mb],
                value_clip=cfg.value_clip, huber_delta=cfg.huber_delta, vf_coef=cfg.vf_coef, **loss_args(cfg))
            opt.zero_grad()
            out.total().backward()
            torch.nn.utils.clip_grad_norm_(policy.parameters(), cfg.max_grad_norm)
            opt.step()
            per_mb.append(out.metrics)
    summary = mean_metrics(per_mb)
    assert set(out.terms) == {"policy_loss", "value_loss", "entropy_loss", "kl_loss"}
    assert summary["clip_fraction"] >= 0 and summary["approx_kl"] > 0  # later minibatches are off-policy
    assert "explained_variance" in metrics and torch.isfinite(out.total())


def test_grpo_flow():
    cfg = AlgorithmConfig(name="grpo", advantage="grpo", clip_ratio_high=0.28, loss_agg="traj_equal", group_size=4)
    gen = torch.Generator().manual_seed(1)
    policy = TinyPolicy()
    opt = torch.optim.AdamW(policy.parameters(), lr=1e-2)
    obs, tokens, old_logprobs, _, step_r, term, trunc = rollout(policy, gen)
    dones = term | trunc  # (T, N_ENV, K): fixed-length episodes end at the first done
    returns = trajectory_returns(step_r, valid_mask(dones))
    est = ADVANTAGE_ESTIMATORS.get(cfg.advantage)
    g = est.fn(returns, group_ids_from_size(N_ENV, cfg.group_size), std_normalize=cfg.grpo_std_normalize,
               eps=cfg.adv_eps, filter_equal=cfg.filter_equal_groups)
    adv, mask = broadcast_trajectory_advantages(g.advantages, dones)  # (T, N_ENV), (T, N_ENV, K)
    mask = mask & g.keep[None, :, None]
    if cfg.normalize_advantages:
        adv = normalize_advantages(adv, mask.any(-1), cfg.adv_eps)
    traj = torch.arange(N_ENV).expand(T, N_ENV).flatten()
    adv, mask = adv.flatten(), mask.reshape(-1, K)
    lp, ent, _ = policy.evaluate(obs.reshape(-1, OBS), tokens)
    out = POLICY_LOSSES.get(cfg.name).fn(logprobs=lp, old_logprobs=old_logprobs, advantages=adv, action_mask=mask,
                                         entropy=ent, ref_logprobs=None, traj_ids=traj, **loss_args(cfg))
    opt.zero_grad()
    out.total().backward()
    opt.step()
    assert est.inputs == "group" and not POLICY_LOSSES.get(cfg.name).needs_critic
    assert set(out.terms) == {"policy_loss", "entropy_loss", "kl_loss"}
    assert abs(out.metrics["approx_kl"]) < 1e-6  # first minibatch: ratio 1 everywhere
    assert 0.0 <= g.filtered_fraction <= 1.0 and torch.isfinite(out.total())
