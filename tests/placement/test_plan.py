"""Plans from config: the device-set grammar, the mode each placement describes, and the errors that
say what to change (fast: no simulator, no model)."""

from __future__ import annotations

import json

import pytest

from placement.cluster import Cluster, cores_of, detect_cluster
from placement.plan import derive_mode, make_plan
from vla_rl.config.core import ConfigError
from vla_rl.config.loader import load_config
from vla_rl.config.placement import PlacementConfig, parse_device_set

GPUS4 = Cluster("gpu", 4, "test: 4 GPUs")
CPUS2 = Cluster("cpu", 2, "test: 2 cores")


def config(*overrides: str):
    return load_config("quickstart_ppo", list(overrides))


@pytest.mark.parametrize("text, expected", [
    ("all", None), ("0", (0,)), (0, (0,)), ("0-3", (0, 1, 2, 3)), ("0,2", (0, 2)), ("3,0-1", (0, 1, 3)),
    (" 1 - 2 ", (1, 2)),
])
def test_device_set_grammar(text, expected):
    assert parse_device_set(text) == expected


@pytest.mark.parametrize("text, fragment", [
    ("", "is empty"), ("a", "not an index"), ("2-1", "low-high"), ("0,0", "twice"), ("-1", "not an index"),
])
def test_bad_device_sets_are_config_errors(text, fragment):
    with pytest.raises(ConfigError, match=fragment):
        PlacementConfig(env=text)


def test_default_is_collocated_sequential_on_every_device():
    plan = make_plan(config(), CPUS2)
    assert plan.mode == "collocated" and not plan.pipelined
    assert plan.env.devices == plan.rollout.devices == plan.actor.devices == (0, 1)
    assert plan.env.workers == 2  # min(num_envs=4, 2 devices x 1 worker per device): today's default
    assert plan.offload == ()  # host memory is the CPU's device: nothing to move


@pytest.mark.parametrize("env, rollout, actor, mode", [
    ("all", "all", "all", "collocated"),
    ("0-1", "2-3", "all", "hybrid"),
    ("0-1", "2-3", "2-3", "hybrid"),
    ("0", "1", "2-3", "disaggregated"),
])
def test_mode_follows_from_device_sets(env, rollout, actor, mode):
    plan = make_plan(config(f"placement.env={env}", f"placement.rollout={rollout}", f"placement.actor={actor}",
                            "placement.backend=ray"), GPUS4)
    assert plan.mode == mode
    assert derive_mode(plan.env.devices, plan.rollout.devices, plan.actor.devices) == mode


def test_hybrid_pipeline_stages_and_aligned_env_workers():
    plan = make_plan(config("env.num_envs=8", "placement.env=0", "placement.rollout=1", "placement.pipeline_stages=4"),
                     CPUS2)
    assert plan.mode == "hybrid" and plan.pipelined
    assert plan.stage_env_ids() == [[0, 1], [2, 3], [4, 5], [6, 7]]
    # each stage's envs live in their own workers: W is a multiple of k that divides N
    assert plan.env.workers % 4 == 0 and 8 % plan.env.workers == 0
    assert json.loads(json.dumps(plan.to_dict()))["stages"][3] == [6, 7]


def test_gpu_collocated_offloads_the_optimizer_and_single_engine_notes_unused_gpus():
    plan = make_plan(config(), GPUS4)
    assert plan.offload and "optimizer" in plan.offload[0]
    assert any("fsdp2" in note for note in plan.notes)
    assert make_plan(config("placement.offload=false"), GPUS4).offload == ()


@pytest.mark.parametrize("overrides, fragment", [
    (["placement.env=0-2"], "names device 2 but the cluster has 2"),
    (["placement.env=0", "placement.rollout=0-1"], "share devices"),
    (["placement.env=0", "placement.rollout=1", "placement.actor=0"], "does not contain the rollout"),
    (["placement.pipeline_stages=2"], "needs env and rollout on different devices"),
    (["env.num_envs=4", "placement.env=0", "placement.rollout=1", "placement.pipeline_stages=3"], "does not divide env.num_envs=4"),
    (["placement.env=0", "placement.rollout=1", "placement.pipeline_stages=2", "env.num_workers=3"],
     "must be a multiple of placement.pipeline_stages=2"),
    (["placement.env=0", "placement.rollout=1", "placement.mode=disaggregated"], "describe hybrid"),
])
def test_invalid_placements_say_what_to_change(overrides, fragment):
    with pytest.raises(ConfigError, match=fragment):
        make_plan(config(*overrides), CPUS2)


def test_local_hybrid_refuses_a_rollout_over_several_gpus():
    with pytest.raises(ConfigError, match="give it one GPU"):
        make_plan(config("placement.env=0-1", "placement.rollout=2-3"), GPUS4)
    assert make_plan(config("placement.env=0-1", "placement.rollout=2-3", "placement.backend=ray"),
                     GPUS4).rollout.workers == 2


def test_detected_cluster_and_its_limits():
    found = detect_cluster(PlacementConfig(device="cpu"))
    assert found.kind == "cpu" and found.count >= 1
    with pytest.raises(ConfigError, match="has only"):
        detect_cluster(PlacementConfig(device="cpu", num_devices=found.count + 1))
    doubled = detect_cluster(PlacementConfig(device="cpu", cpu_slots_per_core=2))
    assert doubled.count == 2 * found.count
    assert cores_of(doubled, [0, 1]) == cores_of(found, [0])  # two slots share a core
    with pytest.raises(ConfigError, match="no GPU"):
        detect_cluster(PlacementConfig(device="cuda"), ray_resources={"CPU": 2.0})
    assert detect_cluster(PlacementConfig(), ray_resources={"CPU": 2.0, "GPU": 3.0}).count == 3


def test_plan_command_prints_the_plan_and_refuses_bad_ones(capsys):
    import vla_rl.cli.plan  # noqa: F401 - registers the command
    from vla_rl.cli.main import main

    assert main(["plan", "quickstart_ppo", "env.num_envs=4", "placement.device=cpu", "placement.env=0", "placement.rollout=1",
                 "placement.pipeline_stages=2"]) == 0
    out = capsys.readouterr().out
    assert "hybrid" in out and "2 stage(s) of 2 envs" in out
    assert main(["plan", "quickstart_ppo", "placement.device=cpu", "placement.pipeline_stages=3", "--json"]) == 2
    assert "pipeline_stages=3" in capsys.readouterr().err
