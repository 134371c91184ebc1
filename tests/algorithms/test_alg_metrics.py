"""Per-update metrics: explained variance, statistics, averaging, KL early stop."""

import math

import pytest
import torch

from vla_rl.algorithms import explained_variance, kl_early_stop, mean_metrics, rollout_metrics, tensor_stats


def test_explained_variance():
    returns = torch.tensor([1.0, 2.0, 3.0, 4.0])
    assert explained_variance(returns, returns) == pytest.approx(1.0)
    assert explained_variance(torch.full((4,), 2.5), returns) == pytest.approx(0.0)
    assert explained_variance(-returns, returns) == pytest.approx(1 - (2 * returns).var().item() / returns.var().item())
    mask = torch.tensor([True, True, True, False])
    assert explained_variance(torch.tensor([1.0, 2.0, 3.0, 99.0]), returns, mask) == pytest.approx(1.0)
    assert math.isnan(explained_variance(returns, torch.ones(4)))


def test_tensor_and_rollout_stats():
    x = torch.tensor([1.0, 3.0, 100.0])
    stats = tensor_stats(x, "advantages", torch.tensor([True, True, False]))
    assert stats == pytest.approx({"advantages/mean": 2.0, "advantages/std": math.sqrt(2), "advantages/min": 1.0,
                                   "advantages/max": 3.0})
    out = rollout_metrics(x, x * 2, values=x * 2)
    assert out["returns/max"] == 200.0 and out["explained_variance"] == pytest.approx(1.0)
    assert "explained_variance" not in rollout_metrics(x, x)
    assert all(math.isnan(v) for v in tensor_stats(x, "a", torch.zeros(3, dtype=torch.bool)).values())


def test_mean_metrics_and_early_stop():
    assert mean_metrics([{"a": 1.0, "b": 2.0}, {"a": 3.0}]) == {"a": 2.0, "b": 2.0}
    assert kl_early_stop(0.02, 0.01) and not kl_early_stop(0.005, 0.01) and not kl_early_stop(9.0, None)


def test_reference_kl_is_the_mean_k3_over_every_token():
    from vla_rl.runner.update import reference_kl

    gen = torch.Generator().manual_seed(0)
    logprobs = torch.log_softmax(torch.randn(6, 2, 3, 5, generator=gen), -1)[..., 0]
    ref = torch.log_softmax(torch.randn(6, 2, 3, 5, generator=gen), -1)[..., 0]
    naive = sum(math.exp(r - p) - 1 - (r - p) for p, r in zip(logprobs.flatten().tolist(), ref.flatten().tolist()))
    assert math.isclose(reference_kl(logprobs, ref)["train/ref_kl"], naive / logprobs.numel(), rel_tol=1e-5)
    assert reference_kl(logprobs, logprobs.clone())["train/ref_kl"] == 0.0
