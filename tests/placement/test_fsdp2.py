"""The FSDP2 engine on 2 gloo processes trains like the single-process engine on the same batch.

Each rank holds half of a 4-sample batch of a real tiny OpenVLA policy and a mean loss over its half;
FSDP2 averages gradients over ranks, so its losses, global gradient norms, updated weights and the
(name-keyed, unsharded) optimizer state must match one process stepping on the whole batch.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp

from engine_batch import loss_of, make_batch

from vla_rl.config.model import ModelConfig
from vla_rl.engines.single import SingleEngine
from vla_rl.models.registry import build_policy

STEPS, BATCH, WORLD = 2, 4, 2
OPT = dict(lr=1e-3, value_lr=3e-3, weight_decay=0.01, max_grad_norm=1.0)


def make_policy():
    torch.manual_seed(0)
    return build_policy(ModelConfig(family="openvla", size="tiny"), action_dim=7, cameras=("main",), proprio_dim=8,
                        seed=0, gripper_convention="open_positive")


def _rank(rank: int, rendezvous: str, out: str) -> None:
    import torch.distributed as dist

    from vla_rl.engines.fsdp2 import FSDP2Engine

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{rendezvous}", rank=rank, world_size=WORLD)
    try:
        policy = make_policy()
        inputs, adv, ret = make_batch(policy, BATCH)
        half = slice(rank * BATCH // WORLD, (rank + 1) * BATCH // WORLD)
        engine = FSDP2Engine(policy, **OPT)
        losses, norms = [], []
        for _ in range(STEPS):
            loss = loss_of(policy, {k: v[half] for k, v in inputs.items()}, adv[half], ret[half])
            norms.append(engine.step(loss)["train/grad_norm"])
            total = loss.detach().clone()
            dist.all_reduce(total)
            losses.append(float(total) / WORLD)
        weights, optim = engine.full_model_state(), engine.state_dict()
        if rank == 0:
            torch.save({"losses": losses, "norms": norms, "weights": weights, "optim": optim}, out)
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_fsdp2_on_two_gloo_ranks_matches_single_process(tmp_path):
    out = str(tmp_path / "fsdp2.pt")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    mp.start_processes(_rank, args=(str(tmp_path / "rendezvous"), out), nprocs=WORLD, start_method="spawn")
    sharded = torch.load(out, weights_only=False)

    policy = make_policy()
    initial = {k: v.clone() for k, v in policy.state_dict().items()}
    inputs, adv, ret = make_batch(policy, BATCH)
    engine = SingleEngine(policy, **OPT)
    losses, norms = [], []
    for _ in range(STEPS):
        loss = loss_of(policy, inputs, adv, ret)
        norms.append(engine.step(loss)["train/grad_norm"])
        losses.append(float(loss.detach()))
    assert losses[0] != losses[1]  # the first step changed the weights
    np.testing.assert_allclose(sharded["losses"], losses, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(sharded["norms"], norms, rtol=1e-4)
    single_weights = policy.state_dict()
    assert set(sharded["weights"]) == set(single_weights)
    # The updates agree where the gradient is real. Adam turns the ~1e-12 rounding noise of a gradient
    # that is zero in exact arithmetic (e.g. attention key biases) into lr-sized random steps: skip those.
    grads = {n: float(p.grad.norm()) for n, p in policy.named_parameters() if p.grad is not None}
    compared = 0
    for name, value in single_weights.items():
        if grads.get(name, 0.0) < 1e-7:
            continue
        update, sharded_update = value - initial[name], sharded["weights"][name] - initial[name]
        assert (sharded_update - update).norm() <= 1e-3 * update.norm() + 1e-6, name
        compared += 1
    assert compared > 10
    single_optim = engine.state_dict()  # the same checkpoint format: name-keyed, unsharded
    assert set(sharded["optim"]["state"]) == set(single_optim["state"])
    for name, state in single_optim["state"].items():
        torch.testing.assert_close(sharded["optim"]["state"][name]["exp_avg"], state["exp_avg"], rtol=1e-3, atol=1e-7)
