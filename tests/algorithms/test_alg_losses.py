"""Clipped objective (asymmetric, dual), value loss (clip, Huber), KL estimators, and the composites."""

import math

import pytest
import torch

from vla_rl.algorithms import (
    KL_ESTIMATORS,
    POLICY_LOSSES,
    clipped_policy_loss,
    group_ids_from_size,
    grpo_advantages,
    actor_loss,
    kl_penalty,
    ppo_loss,
    value_loss,
)

D = torch.float64


def one_element(ratio, adv, low=0.2, high=0.28, dual=None):
    """Loss and d loss / d logprob of a single element with the given ratio and advantage."""
    lp = torch.tensor([math.log(ratio)], dtype=D, requires_grad=True)
    loss, stats = clipped_policy_loss(lp, torch.zeros(1, dtype=D), torch.tensor([adv], dtype=D), torch.ones(1, dtype=D),
                                      clip_ratio=low, clip_ratio_high=high, dual_clip=dual)
    loss.backward()
    return loss.item(), lp.grad.item(), {k: v.item() for k, v in stats.items()}


@pytest.mark.parametrize(
    "ratio, adv, loss, grad, clipped",
    [
        (1.25, 1.0, -1.25, -1.25, 0.0),  # inside the asymmetric range (would clip at symmetric 0.2)
        (1.27, 1.0, -1.27, -1.27, 0.0),  # just below 1 + high
        (1.29, 1.0, -1.28, 0.0, 1.0),  # just above 1 + high: clipped, no gradient
        (0.5, 1.0, -0.5, -0.5, 0.0),  # positive advantage never clips below
        (0.81, -1.0, 0.81, 0.81, 0.0),  # just above 1 - low
        (0.79, -1.0, 0.8, 0.0, 1.0),  # just below 1 - low: clipped, no gradient
        (2.0, -1.0, 2.0, 2.0, 0.0),  # negative advantage never clips above (no dual clip)
    ],
)
def test_asymmetric_clip_boundaries_and_gradients(ratio, adv, loss, grad, clipped):
    got_loss, got_grad, stats = one_element(ratio, adv)
    assert got_loss == pytest.approx(loss)
    assert got_grad == pytest.approx(grad)  # d(-A r)/d logp = -A r where unclipped
    assert stats["clip_fraction"] == clipped


def test_dual_clip_caps_negative_advantages_only():
    loss, grad, stats = one_element(4.0, -2.0, dual=3.0)
    assert (loss, grad, stats["dual_clip_fraction"]) == (pytest.approx(6.0), 0.0, 1.0)  # -A c = 6
    loss, grad, stats = one_element(2.9, -2.0, dual=3.0)  # below c: the ordinary objective
    assert (loss, grad, stats["dual_clip_fraction"]) == (pytest.approx(5.8), pytest.approx(5.8), 0.0)
    loss, grad, stats = one_element(4.0, 2.0, dual=3.0)  # positive advantage: plain clip
    assert (loss, grad, stats["dual_clip_fraction"]) == (pytest.approx(-2.0 * 1.28), 0.0, 0.0)
    assert one_element(4.0, -2.0, dual=None)[0] == pytest.approx(8.0)
    with pytest.raises(ValueError, match="must be > 1"):
        one_element(1.0, 1.0, dual=1.0)


def test_diagnostics_over_weighted_elements():
    lp = torch.log(torch.tensor([1.0, 1.5, 0.5, 9.0], dtype=D))
    adv = torch.tensor([1.0, 1.0, -1.0, 1.0], dtype=D)
    w = torch.tensor([1 / 3, 1 / 3, 1 / 3, 0.0], dtype=D)  # the last element is masked
    _, stats = clipped_policy_loss(lp, torch.zeros(4, dtype=D), adv, w, clip_ratio=0.2, clip_ratio_high=0.2, dual_clip=None)
    assert stats["clip_fraction"].item() == pytest.approx(2 / 3)
    assert stats["ratio_max"].item() == pytest.approx(1.5)
    k3 = [r - 1 - math.log(r) for r in (1.0, 1.5, 0.5)]
    assert stats["approx_kl"].item() == pytest.approx(sum(k3) / 3)


# --- value loss ------------------------------------------------------------------------------


def one_value(v, old, ret, clip=0.2, huber=None):
    values = torch.tensor([v], dtype=D, requires_grad=True)
    loss, stats = value_loss(values, torch.tensor([old], dtype=D), torch.tensor([ret], dtype=D), torch.ones(1, dtype=D),
                             value_clip=clip, huber_delta=huber)
    loss.backward()
    return loss.item(), values.grad.item(), stats["value_clip_fraction"].item()


def test_value_clipping():
    # moved past the clip towards the target: the clipped error is larger and has no gradient
    assert one_value(1.5, 1.0, 2.0) == (pytest.approx(0.5 * 0.8**2), 0.0, 1.0)
    # inside the clip range: plain squared error
    assert one_value(0.9, 1.0, 2.0) == (pytest.approx(0.5 * 1.1**2), pytest.approx(-1.1), 0.0)
    # moved past the clip away from the target: the unclipped error is larger, gradient flows
    assert one_value(1.5, 1.0, 1.0) == (pytest.approx(0.125), pytest.approx(0.5), 0.0)
    # no clipping at all
    assert one_value(1.5, 1.0, 2.0, clip=None) == (pytest.approx(0.125), pytest.approx(-0.5), 0.0)


def test_huber_value_loss():
    assert one_value(0.0, 0.0, 3.0, clip=None, huber=1.0)[:2] == (pytest.approx(2.5), pytest.approx(-1.0))
    assert one_value(0.0, 0.0, 0.5, clip=None, huber=1.0)[:2] == (pytest.approx(0.125), pytest.approx(-0.5))
    # Huber with clipping: clipped value 0.2 vs target 3 -> 1 * (2.8 - 0.5)
    assert one_value(1.0, 0.0, 3.0, clip=0.2, huber=1.0)[:2] == (pytest.approx(2.3), 0.0)


# --- KL ---------------------------------------------------------------------------------------


def test_kl_estimators_hand_values():
    lp, ref = torch.tensor([-1.0], dtype=D), torch.tensor([-2.0], dtype=D)  # log r = ref - lp = -1
    assert KL_ESTIMATORS.get("k1")(lp, ref).item() == pytest.approx(1.0)
    assert KL_ESTIMATORS.get("k2")(lp, ref).item() == pytest.approx(0.5)
    assert KL_ESTIMATORS.get("k3")(lp, ref).item() == pytest.approx(math.exp(-1))


@pytest.mark.parametrize("name", ["k1", "k3"])
def test_unbiased_estimators_match_exact_kl(name):
    p = torch.tensor([0.5, 0.3, 0.15, 0.05], dtype=D)
    q = torch.tensor([0.25, 0.25, 0.25, 0.25], dtype=D)
    exact = (p * (p / q).log()).sum().item()
    samples = torch.multinomial(p, 200_000, replacement=True, generator=torch.Generator().manual_seed(0))
    est = KL_ESTIMATORS.get(name)(p.log()[samples], q.log()[samples]).mean().item()
    assert est == pytest.approx(exact, abs=0.01)


def test_kl_penalty_refuses_reference_with_grad():
    lp = torch.zeros(2, dtype=D)
    with pytest.raises(ValueError, match="ref_logprobs requires grad"):
        kl_penalty(lp, torch.zeros(2, dtype=D, requires_grad=True), torch.full((2,), 0.5, dtype=D), "k3")


# --- composites ---------------------------------------------------------------------------------


def batch(seed=0, n=4, k=2, a=3):
    g = torch.Generator().manual_seed(seed)
    old = -torch.rand(n, k, a, generator=g, dtype=D)
    return dict(
        logprobs=(old + 0.1 * torch.randn(n, k, a, generator=g, dtype=D)).requires_grad_(),
        old_logprobs=old,
        advantages=torch.randn(n, generator=g, dtype=D),
        action_mask=torch.ones(n, dtype=torch.bool),
        entropy=torch.rand(n, k, a, generator=g, dtype=D),
        ref_logprobs=None,
        traj_ids=None,
    )


ACTOR = dict(logprob_granularity="action", loss_agg="token_mean", clip_ratio=0.2, clip_ratio_high=0.28,
             dual_clip=3.0, entropy_coef=0.0, kl_coef=0.0, kl_estimator="k3")


def critic(seed=1, n=4):
    g = torch.Generator().manual_seed(seed)
    return dict(values=torch.randn(n, generator=g, dtype=D).requires_grad_(), old_values=torch.randn(n, generator=g, dtype=D),
                returns=torch.randn(n, generator=g, dtype=D))


def test_ppo_terms_sum_and_coefficients():
    b, c = batch(), critic()
    out = ppo_loss(**b, **c, **{**ACTOR, "entropy_coef": 0.01}, value_clip=0.2, huber_delta=None, vf_coef=0.5)
    assert set(out.terms) == {"policy_loss", "value_loss", "entropy_loss", "kl_loss"}
    assert out.terms["value_loss"].item() == pytest.approx(0.5 * out.metrics["vf_loss"])
    assert out.terms["entropy_loss"].item() == pytest.approx(-0.01 * b["entropy"].mean().item())
    assert out.terms["kl_loss"].item() == 0.0 and "kl" not in out.metrics
    assert out.total().item() == pytest.approx(sum(t.item() for t in out.terms.values()))
    for key in ("clip_fraction", "dual_clip_fraction", "approx_kl", "entropy", "value_clip_fraction", "pg_loss"):
        assert isinstance(out.metrics[key], float)
    out.total().backward()
    assert c["values"].grad is not None and b["logprobs"].grad is not None


def test_kl_term_only_with_coefficient_and_reference():
    b = batch()
    ref = b["old_logprobs"] - 0.2
    out = actor_loss(**{**b, "ref_logprobs": ref}, **{**ACTOR, "kl_coef": 0.1})
    per_token = KL_ESTIMATORS.get("k3")(b["logprobs"].detach(), ref)
    assert out.metrics["kl"] == pytest.approx(per_token.mean().item())
    assert out.terms["kl_loss"].item() == pytest.approx(0.1 * per_token.mean().item())
    with pytest.raises(ValueError, match="needs ref_logprobs"):
        actor_loss(**b, **{**ACTOR, "kl_coef": 0.1})
    with pytest.raises(ValueError, match="kl_coef is 0"):
        actor_loss(**{**b, "ref_logprobs": ref}, **ACTOR)
    with pytest.raises(ValueError, match="ref_logprobs requires grad"):
        actor_loss(**{**b, "ref_logprobs": ref.clone().requires_grad_()}, **{**ACTOR, "kl_coef": 0.1})


@pytest.mark.parametrize("name", ["old_logprobs", "advantages"])
def test_refuses_stored_inputs_with_grad(name):
    b = batch()
    b[name] = b[name].clone().requires_grad_()
    with pytest.raises(ValueError, match=f"{name} requires grad"):
        actor_loss(**b, **ACTOR)


@pytest.mark.parametrize("name", ["old_values", "returns"])
def test_ppo_refuses_stored_critic_inputs_with_grad(name):
    c = critic()
    c[name] = c[name].clone().requires_grad_()
    with pytest.raises(ValueError, match=f"{name} requires grad"):
        ppo_loss(**batch(), **c, **ACTOR, value_clip=0.2, huber_delta=None, vf_coef=0.5)


def test_shape_and_entropy_errors_name_the_input():
    b = batch()
    with pytest.raises(ValueError, match="advantages has shape"):
        actor_loss(**{**b, "advantages": torch.zeros(3, dtype=D)}, **ACTOR)
    with pytest.raises(ValueError, match="entropy_coef=0.01 needs entropy"):
        actor_loss(**{**b, "entropy": None}, **{**ACTOR, "entropy_coef": 0.01})
    with pytest.raises(ValueError, match="values has shape"):
        ppo_loss(**b, **{**critic(), "values": torch.zeros(4, 1, dtype=D)}, **ACTOR, value_clip=None, huber_delta=None, vf_coef=0.5)
    with pytest.raises(ValueError, match="values is missing: one value per sample"):  # a policy without a value head
        ppo_loss(**b, **{**critic(), "values": None}, **ACTOR, value_clip=None, huber_delta=None, vf_coef=0.5)


def test_registry_entries():
    assert POLICY_LOSSES.get("ppo").needs_critic and POLICY_LOSSES.get("ppo").fn is ppo_loss
    assert POLICY_LOSSES.get("grpo").fn is actor_loss and not POLICY_LOSSES.get("rloo").needs_critic


def test_policy_improves_on_a_token_bandit():
    """A few GRPO updates on a one-step task raise the probability of the rewarded token."""
    torch.manual_seed(0)
    n, k, a, vocab = 32, 2, 3, 4
    logits = torch.zeros(k, a, vocab, requires_grad=True)
    opt = torch.optim.SGD([logits], lr=0.5)
    for _ in range(30):
        with torch.no_grad():
            dist = torch.distributions.Categorical(logits=logits.expand(n, k, a, vocab))
            tokens = dist.sample()
            old = dist.log_prob(tokens)
        returns = (tokens == 0).float().mean(dim=(1, 2))
        adv = grpo_advantages(returns, group_ids_from_size(n, 8), std_normalize=True, eps=1e-6, filter_equal=True)
        for _ in range(2):
            lp = torch.distributions.Categorical(logits=logits.expand(n, k, a, vocab)).log_prob(tokens)
            out = actor_loss(logprobs=lp, old_logprobs=old, advantages=adv.advantages, action_mask=adv.keep,
                             entropy=None, ref_logprobs=None, traj_ids=torch.arange(n),
                             **{**ACTOR, "loss_agg": "traj_equal"})
            opt.zero_grad()
            out.total().backward()
            opt.step()
    assert logits.softmax(-1)[..., 0].min().item() > 0.5  # from 0.25 at the start
