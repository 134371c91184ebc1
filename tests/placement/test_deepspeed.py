"""The DeepSpeed engine on 2 gloo processes trains like the single-process engine, under ZeRO 1, 2 and 3,
and its checkpoints (whole weights + name-keyed optimizer state) load into the single engine and back.

Each rank holds half of a 4-sample batch of a tiny CNN policy and a mean loss over its half; DeepSpeed
averages gradients over ranks, so its losses, gradient norms and weights after 3 steps must match one
process stepping on the whole batch. Checkpoints cross engines both ways:
- single -> deepspeed: the single engine's state after step 1 loads into a fresh DeepSpeed engine,
  whose next step must give the single engine's weights after step 2;
- deepspeed -> single: DeepSpeed's state after step 2 loads into a fresh single engine, whose next
  step must give DeepSpeed's weights after step 3.
One spawned 2-rank job (module fixture) runs every stage; the tests read its results.
"""

from __future__ import annotations

import copy
import os

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp

from engine_batch import loss_of, make_batch

from vla_rl.config.model import ModelConfig
from vla_rl.engines.single import SingleEngine
from vla_rl.models.registry import build_policy

STEPS, BATCH, WORLD, STAGES = 3, 4, 2, (1, 2, 3)
OPT = dict(lr=1e-3, value_lr=3e-3, weight_decay=0.01, max_grad_norm=1.0)


def make_policy():
    return build_policy(ModelConfig(family="cnn", size="tiny"), action_dim=7, cameras=("main",), proprio_dim=8,
                        seed=0, gripper_convention="open_positive")


def _rank(rank: int, rendezvous: str, single_ckpt: str, out: str) -> None:
    import torch.distributed as dist

    from vla_rl.engines.deepspeed import DeepSpeedEngine

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{rendezvous}", rank=rank, world_size=WORLD)
    try:
        inputs, adv, ret = make_batch(make_policy(), BATCH)
        half = slice(rank * BATCH // WORLD, (rank + 1) * BATCH // WORLD)
        mine = ({k: v[half] for k, v in inputs.items()}, adv[half], ret[half])
        results = {}
        for stage in STAGES:
            engine = DeepSpeedEngine(make_policy(), **OPT, zero_stage=stage)
            losses, norms, at_step2 = [], [], None
            for step in range(STEPS):
                loss = loss_of(engine.policy, *mine)
                norms.append(engine.step(loss)["train/grad_norm"])
                total = loss.detach().clone()
                dist.all_reduce(total)
                losses.append(float(total) / WORLD)
                if step == 1:
                    at_step2 = {"weights": engine.full_model_state(), "optim": engine.state_dict()}
            weights = engine.full_model_state()
            resumed = DeepSpeedEngine(make_policy(), **OPT, zero_stage=stage)  # single -> deepspeed
            saved = torch.load(single_ckpt, weights_only=False)
            resumed.load_model_state(saved["weights"])
            resumed.load_state_dict(saved["optim"])
            resumed.step(loss_of(resumed.policy, *mine))
            results[stage] = {"losses": losses, "norms": norms, "weights": weights, "at_step2": at_step2,
                              "resumed": resumed.full_model_state()}
        if rank == 0:
            torch.save(results, out)
    finally:
        dist.destroy_process_group()


def single_run():
    """The single-process engine on the whole batch: losses, norms, weights after each step, state after step 1."""
    policy = make_policy()
    inputs, adv, ret = make_batch(policy, BATCH)
    engine = SingleEngine(policy, **OPT)
    run = {"initial": {k: v.clone() for k, v in policy.state_dict().items()}, "losses": [], "norms": [], "weights": []}
    for step in range(STEPS):
        loss = loss_of(policy, inputs, adv, ret)
        run["norms"].append(engine.step(loss)["train/grad_norm"])
        run["losses"].append(float(loss.detach()))
        run["weights"].append({k: v.clone() for k, v in policy.state_dict().items()})
        if step == 0:
            run["ckpt"] = {"weights": run["weights"][0], "optim": copy.deepcopy(engine.state_dict())}
        if step == 1:  # (the state dict's tensors are the optimizer's own on the CPU: copy them)
            run["optim2"] = copy.deepcopy(engine.state_dict())
    return run


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("deepspeed")
    single = single_run()
    torch.save(single["ckpt"], tmp / "single_ckpt.pt")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    mp.start_processes(_rank, args=(str(tmp / "rendezvous"), str(tmp / "single_ckpt.pt"), str(tmp / "ds.pt")),
                       nprocs=WORLD, start_method="spawn")
    return single, torch.load(tmp / "ds.pt", weights_only=False)


def assert_same_update(weights, reference, start):
    """The updates from `start` agree to 1e-3 of their size (per tensor)."""
    assert set(weights) == set(reference)
    for name, value in reference.items():
        update, other = value - start[name], weights[name] - start[name]
        assert (other - update).norm() <= 1e-3 * update.norm() + 1e-6, name


@pytest.mark.slow
@pytest.mark.parametrize("stage", STAGES)
def test_zero_stage_trains_like_single_process(runs, stage):
    single, ds = runs[0], runs[1][stage]
    assert single["losses"][0] != single["losses"][1]  # the steps changed the weights
    # Each rank's forward runs on half the batch, and CPU conv kernels may round a batch of 2 differently from one
    # of 4 (seen: 4e-5 relative on the first loss on one machine, 0 on another); a wrong gradient reduction is off
    # by a factor of the world size, far outside these tolerances.
    np.testing.assert_allclose(ds["losses"], single["losses"], rtol=2e-4, atol=1e-6)
    np.testing.assert_allclose(ds["norms"], single["norms"], rtol=1e-3)
    assert_same_update(ds["weights"], single["weights"][-1], single["initial"])
    optim, reference = ds["at_step2"]["optim"], single["optim2"]  # the same name-keyed, unsharded format
    assert set(optim["state"]) == set(reference["state"])
    assert [g["params"] for g in optim["param_groups"]] == [g["params"] for g in reference["param_groups"]]
    assert [g["lr"] for g in optim["param_groups"]] == [OPT["lr"], OPT["value_lr"]]
    for name, state in reference["state"].items():
        assert float(optim["state"][name]["step"]) == float(state["step"]) == 2.0
        for key in ("exp_avg", "exp_avg_sq"):
            value = optim["state"][name][key]
            assert value.shape == state[key].shape, (name, key)
            assert (value - state[key]).norm() <= 1e-3 * state[key].norm() + 1e-12, (name, key)


@pytest.mark.slow
@pytest.mark.parametrize("stage", STAGES)
def test_checkpoints_cross_between_single_and_deepspeed(runs, stage):
    single, ds = runs[0], runs[1][stage]
    # single -> deepspeed: resumed after step 1, one step, equals the single engine's step 2
    assert_same_update(ds["resumed"], single["weights"][1], single["weights"][0])
    # deepspeed -> single: DeepSpeed's state after step 2 into a fresh single engine, one step, equals its step 3
    policy = make_policy()
    inputs, adv, ret = make_batch(policy, BATCH)
    policy.load_state_dict(ds["at_step2"]["weights"])
    engine = SingleEngine(policy, **OPT)
    engine.load_state_dict(ds["at_step2"]["optim"])
    engine.step(loss_of(policy, inputs, adv, ret))
    assert_same_update(policy.state_dict(), ds["weights"], ds["at_step2"]["weights"])
