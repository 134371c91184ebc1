"""Data-parallel `vla-rl train` with a distributed engine: 2 gloo ranks of the real runner (slow), and
the launch errors (fast).

The slow tests run ManiSkill PushCube-v1 from 64 px RGB with the tiny CNN policy, PPO, 4 envs (2 per
rank), 2 iterations of 3 chunk steps, once with engine=single in this process and once per distributed
engine on 2 spawned ranks. Episodes last 2 steps, so every env ends one episode in the first
iteration and the ranks must hand out the next reset ids as one process does.

What is compared with the single-process run, and why it can agree:
- the rollouts: at a near-zero sampling temperature both runs take the argmax action, the envs start
  from the same reset ids (also after the auto-resets) and ManiSkill is deterministic from a reset
  id, so the episode statistics of iteration 1 are equal exactly, and the checkpoint written after
  iteration 1 holds the same replay log (reset id of every env's episode in flight) and reset cursor;
- the first iteration's loss (within 1e-3): one minibatch and one epoch, so `train/loss` is the loss
  of the whole batch before any step; each rank's is the mean over its half, every action counts
  (episodes end on chunk boundaries), advantages are normalised with statistics all-reduced over both
  halves, and the logged value is the mean over ranks, i.e. the whole batch's mean. (Later
  iterations differ in float rounding of the gradient, and at that temperature the argmax can flip.)
It also checks that only rank 0 wrote: each iteration's metrics once, one evaluation record holding
every evaluation id once, and a final checkpoint in the single-process layout that loads; and that
resuming the 2-rank run from its iteration-1 checkpoint repeats iteration 2 exactly.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest
import torch
import torch.multiprocessing as mp

from vla_rl.checkpoints import load_trainer_state
from vla_rl.config.loader import load_config
from vla_rl.metrics_log import read_metrics

WORLD = 2
# The full spawn square: with the quickstart's 5 x 5 cm one (spawn_scale 0.25) the 2-rank and 1-process
# returns differed in the 5th digit; we suspect PhysX state that an env's earlier episodes leave behind
# and that shows once the gripper reaches the cube, which these random 2-step episodes rarely do on the
# full square. Equal layouts stay bit-identical either way (tests/simulators/test_spawn_scale.py).
TINY = ["env.task=PushCube-v1", "env.spawn_scale=1.0", "env.num_envs=4", "env.image_size=64", "env.max_episode_steps=2", "model.family=cnn",
        "env.reward_mode=dense", "warmstart.enabled=false",
        "runner.iterations=2", "runner.save_every=1", "rollout.steps_per_iteration=3", "rollout.temperature=0.0001",
        "runner.eval_episodes=3", "runner.eval_initial=false", "runner.video=false", "algorithm.num_minibatches=1",
        "algorithm.update_epochs=1", "placement.device=cpu", "placement.torch_threads=1"]
ENGINES = {"fsdp2": ["placement.engine=fsdp2"], "deepspeed": ["placement.engine=deepspeed", "placement.zero_stage=2"]}


def _train(overrides: list[str]) -> None:
    from vla_rl.runner.loop import Runner

    runner = Runner(load_config("quickstart_ppo", overrides), progress=False)
    try:
        runner.run()
    finally:
        runner.close()


def _rank(rank: int, rendezvous: str, overrides: list[str]) -> None:
    import torch.distributed as dist

    torch.set_num_threads(1)
    os.environ["LOCAL_RANK"] = str(rank)
    dist.init_process_group("gloo", init_method=f"file://{rendezvous}", rank=rank, world_size=WORLD)
    try:
        _train(overrides)
    finally:
        dist.destroy_process_group()


def _run_dir(tmp, name: str, extra: list[str]) -> tuple[list[str], object]:
    return [*TINY, *extra, f"runner.output_dir={tmp}", f"runner.name={name}"], tmp / name


@pytest.fixture(scope="module")
def single(tmp_path_factory):
    overrides, run_dir = _run_dir(tmp_path_factory.mktemp("single"), "single", [])
    _train(overrides)
    return run_dir


def _iteration(run_dir, iteration: int) -> dict:
    rows = [r for r in read_metrics(run_dir / "logs") if r["iteration"] == iteration and "train/loss" in r]
    assert len(rows) == 1, rows  # written once: by rank 0 only
    return rows[0]


def _two_ranks(tmp, name: str, extra: list[str]):
    overrides, run_dir = _run_dir(tmp, name, extra)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    mp.start_processes(_rank, args=(str(tmp / f"rendezvous-{name}"), overrides), nprocs=WORLD, start_method="spawn")
    return run_dir


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory):
    """engine -> the run folder of its 2-rank run (each run once per module)."""
    runs: dict[str, object] = {}

    def get(engine: str):
        if engine not in runs:
            runs[engine] = _two_ranks(tmp_path_factory.mktemp(engine), engine, ENGINES[engine])
        return runs[engine]
    return get


@pytest.mark.slow
@pytest.mark.parametrize("engine", list(ENGINES))
def test_two_ranks_train_like_one_process(engine, single, two_ranks):
    run_dir = two_ranks(engine)
    rows = read_metrics(run_dir / "logs")
    assert [r["iteration"] for r in rows if "train/loss" in r] == [1, 2]
    assert [r["iteration"] for r in rows if "eval/episodes" in r] == [2]
    first, reference = _iteration(run_dir, 1), _iteration(single, 1)
    for key in ("env/episodes", "env/episode_return", "env/episode_length", "env/success_rate"):
        assert first[key] == reference[key], key
    assert first["rollout/total_env_steps"] == reference["rollout/total_env_steps"] == 12
    assert first["train/loss"] == pytest.approx(reference["train/loss"], rel=1e-3, abs=1e-6)
    assert first["train/value_loss"] == pytest.approx(reference["train/value_loss"], rel=1e-3, abs=1e-6)

    mid, mid_single = (load_trainer_state(d / "checkpoints" / "iter-000001") for d in (run_dir, single))
    assert mid.extra["env_state"]["reset_ids"] == mid_single.extra["env_state"]["reset_ids"] == [4, 5, 6, 7]
    assert mid.reset_cursor == mid_single.reset_cursor == 8
    assert len(mid.extra["obs"]["instruction"]) == 4 and len(mid.extra["rank_rng"]) == WORLD

    record = json.loads((run_dir / "eval" / "final.json").read_text())
    assert sorted(e["reset_id"] for e in record["episodes"]) == [1_000_000, 1_000_001, 1_000_002]
    final = run_dir / "checkpoints" / "iter-000002"
    assert (run_dir / "checkpoints" / "latest").read_text().strip() == final.name
    state = load_trainer_state(final)
    from vla_rl.models.registry import load_policy

    policy = load_policy(str(final / "policy"))
    assert set(state.optimizer["state"]) == {n for n, p in policy.named_parameters() if p.requires_grad}
    assert float(next(iter(state.optimizer["state"].values()))["step"]) == 2.0
    assert set(policy.state_dict()) == set(load_policy(str(single / "checkpoints" / "iter-000002" / "policy"))
                                           .state_dict())


def _train_cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vla_rl.cli.main", "train", "quickstart_ppo", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=120)


@pytest.mark.parametrize("engine", list(ENGINES))
def test_plain_train_with_a_distributed_engine_names_the_torchrun_command(engine):
    out = _train_cli("runner.iterations=1", f"placement.engine={engine}")
    assert out.returncode == 2
    assert re.search(rf"`torchrun --nproc-per-node \d+ -m vla_rl.cli.train quickstart_ppo runner.iterations=1 "
                     rf"placement.engine={engine}`", out.stderr), out.stderr


def test_torchrun_with_the_single_engine_is_refused():
    out = _train_cli("runner.iterations=1", env={"WORLD_SIZE": "2", "RANK": "0"})
    assert out.returncode == 2 and "placement.engine=fsdp2 (or deepspeed)" in out.stderr


def test_zero_stage_is_validated():
    from vla_rl.config.core import ConfigError

    assert load_config("quickstart_ppo", ["placement.engine=deepspeed", "placement.zero_stage=3"]).placement.zero_stage == 3
    with pytest.raises(ConfigError, match="only applies to placement.engine=deepspeed"):
        load_config("quickstart_ppo", ["placement.zero_stage=1"])
    with pytest.raises(ConfigError, match="use 1 .* 2 .* 3"):
        load_config("quickstart_ppo", ["placement.engine=deepspeed", "placement.zero_stage=4"])


@pytest.mark.slow
def test_two_ranks_resume_exactly(two_ranks, tmp_path):
    """Resuming the 2-rank run from its iteration-1 checkpoint (weights, gathered optimizer state, each
    rank's RNG streams, all envs' episodes in flight) repeats its iteration 2 exactly."""
    full = two_ranks("fsdp2")
    checkpoint = full / "checkpoints" / "iter-000001"
    resumed = _two_ranks(tmp_path, "resumed", [*ENGINES["fsdp2"], f"runner.resume={checkpoint}"])
    a, b = _iteration(full, 2), _iteration(resumed, 2)
    compared = [k for k in a if not k.startswith("time/") and k != "rollout/env_steps_per_s"]
    assert len(compared) > 20
    for key in compared:
        assert b[key] == pytest.approx(a[key], rel=1e-6, abs=1e-9), key
