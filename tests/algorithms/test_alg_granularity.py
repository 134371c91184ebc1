"""Log-prob granularity, loss aggregation modes, and the masked-gradient property of the loss."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from vla_rl.algorithms import actor_loss, loss_weights, mask_to_granularity, to_granularity

F, T_ = False, True


def test_to_granularity_sums_only_executed_actions():
    tokens = torch.arange(12, dtype=torch.float64).reshape(2, 2, 3)  # N=2, K=2, A=3
    tokens[1, 1] = float("nan")  # an action that was not executed
    mask = torch.tensor([[T_, T_], [T_, F]])
    assert torch.equal(to_granularity(tokens, "token", mask)[0], tokens[0])
    assert to_granularity(tokens, "action", mask).tolist() == [[3.0, 12.0], [21.0, 0.0]]
    assert to_granularity(tokens, "chunk", mask).tolist() == [15.0, 21.0]
    assert to_granularity(tokens, "chunk", torch.tensor([T_, T_]))[0].item() == 15.0  # per-sample mask


def test_mask_to_granularity_shapes():
    mask = torch.tensor([[T_, F], [F, F]])
    assert mask_to_granularity(mask, "token", 3).shape == (2, 2, 3)
    assert mask_to_granularity(mask, "action", 3).tolist() == [[T_, F], [F, F]]
    assert mask_to_granularity(mask, "chunk", 3).tolist() == [T_, F]
    with pytest.raises(KeyError, match="registered: action, chunk, token"):
        mask_to_granularity(mask, "step", 3)


def close(actual, expected):
    torch.testing.assert_close(actual, torch.tensor(expected, dtype=actual.dtype))


MASK = torch.tensor([[T_, T_], [T_, F], [F, F], [T_, T_]])  # 4 samples x 2 elements


def test_token_mean_weights():
    close(loss_weights(MASK, "token_mean"), [[0.2, 0.2], [0.2, 0], [0, 0], [0.2, 0.2]])


def test_seq_mean_weights():
    w = loss_weights(MASK, "seq_mean")  # 3 samples with any element, each 1/3
    close(w, [[1 / 6, 1 / 6], [1 / 3, 0], [0, 0], [1 / 6, 1 / 6]])


def test_traj_equal_weights():
    traj = torch.tensor([0, 0, 1, 2])  # traj 0: samples 0-1 (3 elements), traj 1: nothing valid, traj 2: 2 elements
    w = loss_weights(MASK, "traj_equal", traj)
    close(w, [[1 / 6, 1 / 6], [1 / 6, 0], [0, 0], [1 / 4, 1 / 4]])
    with pytest.raises(ValueError, match="needs traj_ids"):
        loss_weights(MASK, "traj_equal")


def test_empty_mask_gives_zero_weights():
    for mode in ("token_mean", "seq_mean", "traj_equal"):
        w = loss_weights(torch.zeros(3, 2, dtype=torch.bool), mode, torch.arange(3))
        assert w.tolist() == [[0.0, 0.0]] * 3


def reference_loss(lp, old, adv, action_mask, traj_ids, granularity, agg, low, high, dual):
    """Per-unit clipped loss with explicit loops, then the aggregation written out per mode."""
    N, K, A = lp.shape
    units = []  # (sample, log ratio)
    for i in range(N):
        valid = [k for k in range(K) if action_mask[i, k]]
        if granularity == "token":
            units += [(i, float(lp[i, k, a] - old[i, k, a])) for k in valid for a in range(A)]
        elif granularity == "action":
            units += [(i, float((lp[i, k] - old[i, k]).sum())) for k in valid]
        elif valid:
            units.append((i, sum(float((lp[i, k] - old[i, k]).sum()) for k in valid)))
    losses = []
    for i, d in units:
        r, a = math.exp(d), float(adv[i])
        loss = max(-a * r, -a * min(max(r, 1 - low), 1 + high))
        if dual is not None and a < 0:
            loss = min(loss, -a * dual)
        losses.append((i, loss))
    if not losses:
        return 0.0
    if agg == "token_mean":
        return sum(x for _, x in losses) / len(losses)
    key = (lambda i: i) if agg == "seq_mean" else (lambda i: int(traj_ids[i]))
    groups = {}
    for i, x in losses:
        groups.setdefault(key(i), []).append(x)
    return sum(sum(v) / len(v) for v in groups.values()) / len(groups)


@pytest.mark.parametrize("granularity", ["token", "action", "chunk"])
@pytest.mark.parametrize("agg", ["token_mean", "seq_mean", "traj_equal"])
def test_policy_loss_matches_reference_for_every_granularity_and_aggregation(granularity, agg):
    g = torch.Generator().manual_seed(7)
    N, K, A = 6, 3, 2
    old = -torch.rand(N, K, A, generator=g, dtype=torch.float64) * 2
    lp = old + torch.randn(N, K, A, generator=g, dtype=torch.float64) * 0.3
    adv = torch.randn(N, generator=g, dtype=torch.float64)
    mask = torch.rand(N, K, generator=g) < 0.7
    traj = torch.tensor([0, 0, 1, 1, 1, 2])
    out = actor_loss(logprobs=lp, old_logprobs=old, advantages=adv, action_mask=mask, entropy=None,
                     ref_logprobs=None, traj_ids=traj, logprob_granularity=granularity, loss_agg=agg, clip_ratio=0.2,
                     clip_ratio_high=0.28, dual_clip=2.0, entropy_coef=0.0, kl_coef=0.0, kl_estimator="k3")
    expected = reference_loss(lp, old, adv, mask, traj, granularity, agg, 0.2, 0.28, 2.0)
    assert out.terms["policy_loss"].item() == pytest.approx(expected, rel=1e-9)
    assert out.total().item() == pytest.approx(expected, rel=1e-9)


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 4), k=st.integers(1, 3), a=st.integers(1, 3), seed=st.integers(0, 10_000),
    granularity=st.sampled_from(["token", "action", "chunk"]),
    agg=st.sampled_from(["token_mean", "seq_mean", "traj_equal"]),
    use_kl=st.booleans(),
)
def test_masked_positions_receive_zero_gradient(n, k, a, seed, granularity, agg, use_kl):
    g = torch.Generator().manual_seed(seed)
    mask = torch.rand(n, k, generator=g) < 0.5
    old = -torch.rand(n, k, a, generator=g, dtype=torch.float64)
    old[~mask] = float("nan")  # garbage where masked must not leak
    lp = (-torch.rand(n, k, a, generator=g, dtype=torch.float64)).requires_grad_()
    entropy = torch.rand(n, k, a, generator=g, dtype=torch.float64).requires_grad_()
    ref = -torch.rand(n, k, a, generator=g, dtype=torch.float64)
    out = actor_loss(logprobs=lp, old_logprobs=old, advantages=torch.randn(n, generator=g, dtype=torch.float64),
                     action_mask=mask, entropy=entropy, ref_logprobs=ref if use_kl else None,
                     traj_ids=torch.arange(n) // 2, logprob_granularity=granularity, loss_agg=agg,
                     clip_ratio=0.2, clip_ratio_high=0.2, dual_clip=3.0, entropy_coef=0.01,
                     kl_coef=0.1 if use_kl else 0.0, kl_estimator="k3")
    out.total().backward()
    assert torch.isfinite(out.total())
    assert (lp.grad[~mask] == 0).all() and (entropy.grad[~mask] == 0).all()
    assert torch.isfinite(lp.grad).all()
    if mask.any():  # the entropy bonus reaches every valid token
        assert (entropy.grad[mask] < 0).all()
