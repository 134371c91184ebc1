"""Config loading: strict keys and types, YAML errors with lines, extends, command-line overrides."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from vla_rl.config.core import ConfigError
from vla_rl.config.loader import CONFIG_DIR, dump_config, load_config


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_every_shipped_recipe_loads():
    recipes = sorted(CONFIG_DIR.glob("*.yaml"))
    assert recipes, "configs/ holds no recipe"
    for recipe in recipes:
        load_config(str(recipe))


def test_default_recipe_is_quickstart():
    config = load_config()
    assert config.runner.name == "quickstart"
    assert config.env.backend == "maniskill"


def test_nested_override_sets_typed_value():
    config = load_config("quickstart_ppo", ["algorithm.clip_ratio=0.3", "env.num_envs=3", "runner.video=false"])
    assert config.algorithm.clip_ratio == pytest.approx(0.3)
    assert config.env.num_envs == 3
    assert config.runner.video is False


def test_scientific_notation_without_a_dot_is_a_number():
    # PyYAML (YAML 1.1) reads "3e-4" as a string; a learning rate written that way must still load.
    config = load_config("quickstart_ppo", ["algorithm.lr=3e-4", "algorithm.value_lr=1E-3"])
    assert config.algorithm.lr == pytest.approx(3e-4) and config.algorithm.value_lr == pytest.approx(1e-3)
    with pytest.raises(ConfigError, match="must be a number"):
        load_config("quickstart_ppo", ["algorithm.lr=3e-"])


def test_unknown_override_key_names_it_and_the_command_line():
    with pytest.raises(ConfigError) as err:
        load_config("quickstart_ppo", ["algorithm.bogus_key=1"])
    message = str(err.value)
    assert "algorithm.bogus_key" in message
    assert message.startswith("command line")
    assert "\n" not in message


def test_unknown_key_in_file_names_file(tmp_path):
    recipe = write(tmp_path / "r.yaml", "extends: %s\nrollout:\n  stepz: 3\n" % (CONFIG_DIR / "quickstart.yaml"))
    with pytest.raises(ConfigError) as err:
        load_config(str(recipe))
    assert "rollout.stepz" in str(err.value)
    assert str(recipe) in str(err.value)


def test_wrong_type_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="env.num_envs"):
        load_config("quickstart_ppo", ["env.num_envs=four"])
    with pytest.raises(ConfigError, match="runner.video"):
        load_config("quickstart_ppo", ["runner.video=3"])


def test_malformed_yaml_names_file_and_line(tmp_path):
    recipe = write(tmp_path / "bad.yaml", "env:\n  num_envs: 2\n  task: [unclosed\nmodel: {}\n")
    with pytest.raises(ConfigError) as err:
        load_config(str(recipe))
    assert f"{recipe}:" in str(err.value)
    assert ":5:" in str(err.value) or ":4:" in str(err.value) or ":3:" in str(err.value)


def test_extends_merges_nested_sections(tmp_path):
    base = write(tmp_path / "base.yaml", "env:\n  num_envs: 6\n  task: PushCube-v1\nrunner:\n  iterations: 9\n")
    child = write(tmp_path / "child.yaml", "extends: base.yaml\nenv:\n  num_envs: 2\n")
    config = load_config(str(child))
    assert config.env.num_envs == 2
    assert config.env.task == "PushCube-v1"
    assert config.runner.iterations == 9


def test_extends_cycle_is_an_error(tmp_path):
    write(tmp_path / "a.yaml", "extends: b.yaml\n")
    write(tmp_path / "b.yaml", "extends: a.yaml\n")
    with pytest.raises(ConfigError, match="cycle"):
        load_config(str(tmp_path / "a.yaml"))


def test_cross_field_check_message_reaches_user():
    with pytest.raises(ConfigError, match="rollout"):
        load_config("quickstart_ppo", ["rollout.steps_per_iteration=0"])


def test_dump_round_trips(tmp_path):
    config = load_config("quickstart_ppo", ["env.num_envs=3"])
    recipe = write(tmp_path / "dumped.yaml", dump_config(config))
    assert load_config(str(recipe)) == config


def test_cli_reports_bad_key_in_one_line():
    proc = subprocess.run([sys.executable, "-m", "vla_rl.cli.main", "train", "algorithm.bogus_key=1"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "algorithm.bogus_key" in lines[0]


def test_group_algorithm_needs_fixed_length_episodes():
    with pytest.raises(ConfigError, match="env.auto_reset=false"):
        load_config("quickstart_ppo", ["algorithm.name=grpo", "algorithm.advantage=grpo", "algorithm.group_size=2"])


def test_group_size_must_divide_num_envs():
    with pytest.raises(ConfigError, match="multiple of"):
        load_config("quickstart_ppo", ["algorithm.name=grpo", "algorithm.advantage=grpo", "algorithm.group_size=3",
                           "env.auto_reset=false", "env.num_envs=4"])
