"""The benchmark protocol, its resume folder, settings and outputs, without running the simulator:
episodes cover every task x init state once, a reduced protocol is PARTIAL and never gets a suite
figure, a folder from another protocol or policy is refused, and bad checkpoints or suites get errors
that name the fix."""

from __future__ import annotations

import json

import pytest

from vla_rl.config.core import ConfigError
from vla_rl.config.env import EnvConfig
from vla_rl.config.model import ModelConfig
from vla_rl.eval.benchmark import split_blocks
from vla_rl.eval.benchmark_protocol import STATES_PER_TASK, make_protocol, parse_task_selection
from vla_rl.eval.benchmark_report import summary
from vla_rl.eval.benchmark_settings import benchmark_settings, check_policy_fits, choose_unnorm_key
from vla_rl.eval.benchmark_store import EpisodeStore
from vla_rl.eval.compare import compare_records
from vla_rl.models.registry import build_policy

NAMES = tuple(f"libero_spatial/task_{i}" for i in range(10))


def _env(**kw) -> EnvConfig:
    return EnvConfig(backend="libero", task="libero_spatial", auto_reset=False, **kw)


def _protocol(tasks=None, init_states=None, **env):
    return make_protocol("libero_spatial", _env(**env), "greedy", 0.6, tasks=tasks, init_states=init_states,
                         task_names=NAMES)


def test_the_full_protocol_runs_every_task_and_init_state_once():
    p = _protocol()
    ids = p.reset_ids()
    assert len(ids) == len(set(ids)) == 10 * STATES_PER_TASK
    assert {(p.task_of(r), p.state_of(r)) for r in ids} == {(t, s) for t in range(10) for s in range(50)}
    assert all(p.reset_id(p.task_of(r), p.state_of(r)) == r for r in ids)
    assert not p.partial and p.step_limits == (220,) * 10 and p.settle_steps == 10
    assert "benchmark protocol of libero_spatial" in p.describe() and "PARTIAL" not in p.describe()
    # libero_130 keeps each task's own suite limit
    names_130 = tuple(f"{s}/t{i}" for s, n in (("libero_spatial", 10), ("libero_object", 10), ("libero_goal", 10),
                                               ("libero_10", 10), ("libero_90", 90)) for i in range(n))
    p130 = make_protocol("libero_130", _env(), "greedy", 0.6, task_names=names_130)
    assert sorted(set(p130.step_limits)) == [220, 280, 300, 400, 520] and len(p130.reset_ids()) == 6500


def test_reduced_or_modified_protocols_are_partial_and_get_no_suite_figure():
    reduced = _protocol(tasks=(0, 3), init_states=2)
    assert reduced.partial and reduced.reset_ids() == [0, 10, 3, 13]
    assert reduced.deviations() == ["2 of 10 tasks", "2 of 50 init states per task"]
    assert _protocol(settle_steps=0).partial and _protocol(max_episode_steps=5).partial
    records = {r: {"reset_id": r, "task": reduced.task_of(r), "success": r in (0, 3), "length": 3, "return": 0.0}
               for r in reduced.reset_ids()}
    s = summary(reduced, records)
    assert s["suite_mean"] is None and s["partial_mean"] == 0.5 and not s["complete"]
    assert [(row["task_index"], row["successes"], row["episodes"]) for row in s["tasks"]] == [(0, 1, 2), (3, 1, 2)]
    full = _protocol()
    done = {r: {"reset_id": r, "task": full.task_of(r), "success": full.task_of(r) < 5, "length": 1, "return": 0.0}
            for r in full.reset_ids()}
    assert summary(full, done)["suite_mean"] == 0.5
    del done[0]  # a complete protocol with an episode missing is not the figure either
    assert summary(full, done)["suite_mean"] is None


def test_task_selection_and_blocks():
    assert parse_task_selection("0,3-5", 10) == (0, 3, 4, 5) and parse_task_selection(None, 3) == (0, 1, 2)
    for bad in ("10", "2-1", "a", "1,1"):
        with pytest.raises(ConfigError, match="--tasks"):
            parse_task_selection(bad, 10)
    with pytest.raises(ConfigError, match="--init-states"):
        _protocol(init_states=51)
    p = _protocol(tasks=(1, 2, 7))
    blocks = split_blocks(p, p.reset_ids()[5:], 4)
    flat = [r for b in blocks for r in b]
    assert sorted(flat) == sorted(p.reset_ids()[5:]) and len(blocks) == 4
    assert max(map(len, blocks)) - min(map(len, blocks)) <= 1
    assert [p.task_of(b[0]) for b in blocks] == sorted(p.task_of(b[0]) for b in blocks)  # task-major


def test_resume_folder_refuses_another_protocol_or_policy(tmp_path):
    p = _protocol(tasks=(0,), init_states=3)
    store = EpisodeStore(tmp_path, p, "aaa").open()
    store.write(10, True, 1.0, 40)
    assert set(store.done()) == {10} and store.done()[10]["init_state"] == 1
    assert not list((tmp_path / "episodes").glob(".*"))  # no temporary file left behind
    assert set(EpisodeStore(tmp_path, p, "aaa").open().done()) == {10}
    with pytest.raises(ConfigError, match=r"another protocol \(image_protocol: \"raw\" there, \"openvla\" now; image_size.*--out"):
        EpisodeStore(tmp_path, _protocol(tasks=(0,), init_states=3, image_protocol="openvla", image_size=224), "aaa").open()
    with pytest.raises(ConfigError, match="another policy"):
        EpisodeStore(tmp_path, p, "bbb").open()


def test_settings_follow_the_checkpoint_then_the_command_line(tmp_path):
    published = benchmark_settings("libero_goal", ("main", "wrist"), None, num_envs=3)
    env = published.env
    assert (env.backend, env.task, env.image_protocol, env.image_size, env.cameras) == \
        ("libero", "libero_goal", "openvla", 224, ("main", "wrist"))
    assert not env.auto_reset and env.num_envs == 3 and published.rollout.eval_mode == "greedy"
    run = tmp_path / "config.yaml"
    run.write_text("env: {backend: libero, task: libero_spatial/2, image_size: 96, max_episode_steps: 7}\n"
                   "model: {family: cnn}\nrollout: {eval_mode: sample, eval_temperature: 0.3}\n"
                   "algorithm: {name: ppo}\n")
    mine = benchmark_settings("libero_goal", ("main",), run, ["env.num_envs=1", "model.unnorm_key=libero_goal"])
    assert (mine.env.image_protocol, mine.env.image_size, mine.env.max_episode_steps) == ("raw", 96, None)
    assert (mine.rollout.eval_mode, mine.model.unnorm_key) == ("greedy", "libero_goal")  # the reference decodes greedily
    sampled = benchmark_settings("libero_goal", ("main",), run, ["rollout.eval_mode=sample", "rollout.eval_temperature=0.3"])
    assert (sampled.rollout.eval_mode, sampled.rollout.eval_temperature) == ("sample", 0.3)
    with pytest.raises(ConfigError, match="command line.*rollout.temperature"):
        benchmark_settings("libero_goal", ("main",), None, ["rollout.temperature=2"])
    with pytest.raises(ConfigError, match="set by --benchmark"):
        benchmark_settings("libero_goal", ("main",), None, ["env.task=libero_10"])


def test_checkpoints_that_cannot_act_in_libero_are_refused(tmp_path):
    cfg = ModelConfig(family="cnn", size="tiny", value_head=False)
    wrong_dim = build_policy(cfg, action_dim=6, cameras=("main",), proprio_dim=8, seed=0)
    with pytest.raises(ConfigError, match="6-d actions but LIBERO takes 7"):
        check_policy_fits(wrong_dim, _env(), tmp_path)
    wrist = build_policy(ModelConfig(family="cnn", size="tiny", value_head=False, use_wrist=True), action_dim=7,
                         cameras=("main", "wrist"), proprio_dim=8, seed=0)
    with pytest.raises(ConfigError, match=r"lacks \['wrist'\]; drop the env.cameras override"):
        check_policy_fits(wrist, _env(cameras=("main",)), tmp_path)
    check_policy_fits(wrist, _env(cameras=("main", "wrist")), tmp_path)
    assert choose_unnorm_key({"libero_goal_no_noops": {}}, "libero_goal", None) == "libero_goal_no_noops"
    assert choose_unnorm_key({"bridge": {}}, "libero_goal", None) is None
    assert choose_unnorm_key({}, "libero_goal", "mine") == "mine"


def test_unknown_suite_and_non_checkpoint_fail_with_the_fix(tmp_path, capsys):
    from vla_rl.cli.main import main

    assert main(["eval", str(tmp_path), "--benchmark", "libero_99", "--no-progress"]) == 2
    assert "use one of libero_spatial, libero_object, libero_goal, libero_10, libero_90, libero_130" in capsys.readouterr().err
    assert main(["eval", str(tmp_path), "--benchmark", "libero_10", "--no-progress"]) == 2
    assert "pass a policy folder" in capsys.readouterr().err


def test_compare_refuses_benchmark_records_of_different_protocols():
    a, b = _protocol(tasks=(0,), init_states=2), _protocol(tasks=(0,), init_states=2, image_size=64)
    rec = lambda p: {"benchmark": {"signature": p.signature()},  # noqa: E731
                     "episodes": [{"reset_id": r, "success": True} for r in p.reset_ids()]}
    assert compare_records(rec(a), rec(a)).n == 2
    with pytest.raises(ValueError, match="different benchmark protocols.*image_size"):
        compare_records(rec(a), rec(b))
    with pytest.raises(ValueError, match="only A is a benchmark evaluation"):
        compare_records(rec(a), {"episodes": rec(a)["episodes"]})
    assert json.dumps(a.signature())  # JSON-able, as protocol.json stores it


def test_cheaper_render_settings_make_a_protocol_partial():
    assert _protocol().render == "published"
    light = _protocol(mesh_detail=0.25, multisample=False)
    assert light.partial and light.deviations() == ["render settings mesh_detail=0.25, multisample=off instead of the "
                                                    "published ones"]
    assert light.signature()["render"] != _protocol().signature()["render"]  # a resume folder refuses the other
