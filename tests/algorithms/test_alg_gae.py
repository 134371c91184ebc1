"""GAE across resets and truncations, against hand values and a plain per-env loop."""

import math

import pytest
import torch

from vla_rl.algorithms import ADVANTAGE_ESTIMATORS, gae, reduce_chunk_rewards
from vla_rl.algorithms.advantages.chunk_rewards import action_mask_from_dones


def reference_gae(r, v, term, trunc, boot, last, gamma, lam):
    """One environment at a time, one step at a time, with explicit branches."""
    T, N = r.shape
    adv = torch.zeros(T, N, dtype=torch.float64)
    for n in range(N):
        next_adv = 0.0
        for t in reversed(range(T)):
            g = float(gamma[t, n]) if torch.is_tensor(gamma) else gamma
            if term[t, n]:
                next_value, cont = 0.0, 0.0
            elif trunc[t, n]:
                next_value, cont = float(boot[t, n]), 0.0
            else:
                next_value, cont = (float(v[t + 1, n]) if t + 1 < T else float(last[n])), 1.0
            delta = float(r[t, n]) + g * next_value - float(v[t, n])
            next_adv = delta + g * lam * cont * next_adv
            adv[t, n] = next_adv
    return adv


def random_window(T, N, seed):
    g = torch.Generator().manual_seed(seed)
    r = torch.randn(T, N, generator=g, dtype=torch.float64)
    v = torch.randn(T, N, generator=g, dtype=torch.float64)
    term = torch.rand(T, N, generator=g) < 0.15
    trunc = torch.rand(T, N, generator=g) < 0.15
    boot = torch.randn(T, N, generator=g, dtype=torch.float64)
    last = torch.randn(N, generator=g, dtype=torch.float64)
    return r, v, term, trunc, boot, last


def test_no_dones_matches_hand_values():
    r = torch.tensor([[1.0], [2.0], [3.0]], dtype=torch.float64)
    zeros = torch.zeros(3, 1, dtype=torch.float64)
    false = torch.zeros(3, 1, dtype=torch.bool)
    out = gae(r, zeros, false, false, zeros, torch.tensor([4.0], dtype=torch.float64), gamma=0.5, lam=1.0)
    # returns: 3 + .5*4 = 5; 2 + .5*5 = 4.5; 1 + .5*4.5 = 3.25
    assert out.returns[:, 0].tolist() == pytest.approx([3.25, 4.5, 5.0])
    assert torch.equal(out.advantages, out.returns)


def test_truncation_bootstraps_and_termination_does_not():
    # env 0 terminates at t=0, env 1 is truncated at t=0 (final obs value 10), env 2 both at once.
    r = torch.tensor([[1.0, 1.0, 1.0], [0.0, 0.0, 0.0]], dtype=torch.float64)
    v = torch.tensor([[0.5, 0.5, 0.5], [2.0, 2.0, 2.0]], dtype=torch.float64)
    term = torch.tensor([[True, False, True], [False, False, False]])
    trunc = torch.tensor([[False, True, True], [False, False, False]])
    boot = torch.tensor([[float("nan"), 10.0, 10.0], [float("nan")] * 3], dtype=torch.float64)
    last = torch.tensor([4.0, 4.0, 4.0], dtype=torch.float64)
    out = gae(r, v, term, trunc, boot, last, gamma=0.9, lam=0.8)
    a1 = 0.0 + 0.9 * 4.0 - 2.0  # second step of the new episode, same for all envs
    assert out.advantages[1].tolist() == pytest.approx([a1] * 3)
    assert out.advantages[0, 0].item() == pytest.approx(1.0 - 0.5)  # no bootstrap, no carry
    assert out.advantages[0, 1].item() == pytest.approx(1.0 + 0.9 * 10.0 - 0.5)  # bootstrap, no carry
    assert out.advantages[0, 2].item() == pytest.approx(1.0 - 0.5)  # terminated wins
    assert torch.isfinite(out.advantages).all(), "NaN in unused bootstrap entries leaked"


@pytest.mark.parametrize("seed", range(5))
def test_random_windows_match_reference_loop(seed):
    r, v, term, trunc, boot, last = random_window(T=12, N=5, seed=seed)
    out = gae(r, v, term, trunc, boot, last, gamma=0.97, lam=0.9)
    torch.testing.assert_close(out.advantages, reference_gae(r, v, term, trunc, boot, last, 0.97, 0.9))
    torch.testing.assert_close(out.returns, out.advantages + v)


def test_per_step_gamma_tensor_matches_reference():
    r, v, term, trunc, boot, last = random_window(T=8, N=3, seed=11)
    gamma = torch.rand(8, 3, generator=torch.Generator().manual_seed(3), dtype=torch.float64) * 0.5 + 0.5
    out = gae(r, v, term, trunc, boot, last, gamma=gamma, lam=0.7)
    torch.testing.assert_close(out.advantages, reference_gae(r, v, term, trunc, boot, last, gamma, 0.7))


def test_refuses_values_with_grad_and_float_dones():
    r, v, term, trunc, boot, last = random_window(T=3, N=2, seed=0)
    with pytest.raises(ValueError, match="values requires grad"):
        gae(r, v.requires_grad_(), term, trunc, boot, last, 0.99, 0.95)
    with pytest.raises(ValueError, match="terminated must be a bool"):
        gae(r, v.detach(), term.double(), trunc, boot, last, 0.99, 0.95)
    with pytest.raises(ValueError, match="last_values has shape"):
        gae(r, v.detach(), term, trunc, boot, last[:1], 0.99, 0.95)


def test_registered_as_window_estimator_with_critic():
    entry = ADVANTAGE_ESTIMATORS.get("gae")
    assert entry.fn is gae and entry.needs_critic and entry.inputs == "window"


# --- rewards inside a chunk ----------------------------------------------------------------


def test_action_mask_up_to_first_done_in_chunk():
    term = torch.tensor([[False, True, False, True], [False, False, False, False]])
    trunc = torch.tensor([[False, False, True, False], [False, False, False, True]])
    assert action_mask_from_dones(term, trunc).tolist() == [[True, True, False, False], [True, True, True, True]]


def test_chunk_level_sums_executed_rewards():
    r = torch.tensor([[1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 3.0, 4.0]])
    term = torch.tensor([[False, True, False, False], [False] * 4])
    trunc = torch.zeros(2, 4, dtype=torch.bool)
    out = reduce_chunk_rewards(r, term, trunc, gamma=0.5, granularity="chunk")
    assert out.rewards.tolist() == [3.0, 10.0]
    assert out.discounts.tolist() == [0.5, 0.5]
    assert out.terminated.tolist() == [True, False] and out.truncated.tolist() == [False, False]


def test_action_level_discounts_inside_the_chunk():
    r = torch.tensor([[1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 3.0, 4.0]])
    term = torch.zeros(2, 4, dtype=torch.bool)
    trunc = torch.tensor([[False] * 4, [False, True, True, False]])  # a later flag after a done is ignored
    out = reduce_chunk_rewards(r, term, trunc, gamma=0.5, granularity="action")
    assert out.rewards.tolist() == pytest.approx([1 + 1 + 0.75 + 0.5, 1 + 1])
    assert out.discounts.tolist() == pytest.approx([0.5**4, 0.5**2])
    assert out.truncated.tolist() == [False, True]


def test_action_level_gae_equals_discounted_return_over_primitive_steps():
    """lambda=1 GAE over chunk-steps with action-level reduction = the Monte Carlo return counted per step."""
    T, K, gamma = 5, 3, 0.9
    g = torch.Generator().manual_seed(0)
    step_r = torch.rand(T, 1, K, generator=g, dtype=torch.float64)
    term = torch.zeros(T, 1, K, dtype=torch.bool)
    term[3, 0, 1] = True  # the episode ends on the 2nd action of chunk 3; chunk 4 starts a new one
    trunc = torch.zeros_like(term)
    chunk = reduce_chunk_rewards(step_r, term, trunc, gamma, "action")
    v = torch.rand(T, 1, generator=g, dtype=torch.float64)
    out = gae(chunk.rewards, v, chunk.terminated, chunk.truncated, torch.zeros(T, 1, dtype=torch.float64),
              torch.zeros(1, dtype=torch.float64), gamma=chunk.discounts, lam=1.0)
    flat = [step_r[t, 0, k].item() for t in range(4) for k in range(K) if (t, k) <= (3, 1)]
    expected = sum(gamma**i * x for i, x in enumerate(flat))
    assert out.returns[0, 0].item() == pytest.approx(expected)
    assert math.isclose(chunk.discounts[3, 0].item(), gamma**2)
