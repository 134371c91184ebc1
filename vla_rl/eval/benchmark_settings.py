"""The settings a benchmark evaluation reads (`BenchmarkRun`: env, decoding, model overrides, placement)
and the checks that a checkpoint can act in LIBERO.

The env section starts from the protocol (LIBERO, the suite, fixed-length episodes, the policy's own
cameras), takes the image protocol and size of the checkpoint's LIBERO run when it has one (what it
was trained to see) or else the published evaluations' `openvla` at 224 px, then the command line's
`key=value` overrides; unknown keys and sections are errors, as in a recipe. Decoding is greedy, as
in the published evaluations, whatever the run evaluated with during training (`rollout.eval_mode=
sample` overrides it); placement comes from the run.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Sequence

from vla_rl.config.core import ConfigError, check, from_dict, to_dict
from vla_rl.config.env import EnvConfig
from vla_rl.config.placement import PlacementConfig

PUBLISHED_IMAGE = {"image_protocol": "openvla", "image_size": 224}
"""What a checkpoint without a LIBERO run config sees: the published evaluations' preprocessing."""


@dataclass
class BenchmarkDecoding:
    """How actions are chosen during the benchmark (the `rollout` section's evaluation keys)."""

    eval_mode: Literal["greedy", "sample"] = "greedy"
    """"greedy" as the published evaluations (`do_sample=False`), or "sample"."""
    eval_temperature: float = 0.6
    """Temperature when eval_mode is "sample"."""

    def __post_init__(self) -> None:
        check(self.eval_temperature > 0, f"rollout.eval_temperature={self.eval_temperature} must be > 0")


@dataclass
class BenchmarkModel:
    """Action decoding choices of the checkpoint that a benchmark run may override."""

    unnorm_key: str | None = None
    """Dataset statistics that un-normalise actions; None: the suite's own key when the checkpoint has it
    (as the reference evaluation picks it), else the checkpoint's choice."""


@dataclass
class BenchmarkRun:
    """Everything a benchmark evaluation reads, from the checkpoint's config and the command line."""

    env: EnvConfig = field(default_factory=EnvConfig)
    rollout: BenchmarkDecoding = field(default_factory=BenchmarkDecoding)
    model: BenchmarkModel = field(default_factory=BenchmarkModel)
    placement: PlacementConfig = field(default_factory=PlacementConfig)


def locate_policy(path: str | Path) -> tuple[Path, Path | None]:
    """(policy folder, the run's config.yaml or None) of a policy folder, checkpoint or run folder."""
    from vla_rl.checkpoints import resolve_checkpoint

    path = Path(path)
    if (path / "config.json").is_file():
        return path, None
    try:
        checkpoint = resolve_checkpoint(path)
    except FileNotFoundError as exc:
        raise ConfigError(f"{exc}; or pass a policy folder (config.json and weights, e.g. a published checkpoint)") from None
    config = checkpoint / "config.yaml"
    return checkpoint / "policy", config if config.is_file() else None


def benchmark_settings(suite: str, cameras: Sequence[str], run_config: Path | None, overrides: Sequence[str] = (),
                       num_envs: int | None = None) -> BenchmarkRun:
    """The settings of one benchmark run: the checkpoint run's choices, the protocol's, then overrides."""
    from vla_rl.config.loader import COMMAND_LINE, apply_overrides, load_config

    env: dict[str, Any] = dict(PUBLISHED_IMAGE)
    data: dict[str, Any] = {}
    if run_config is not None:
        run = load_config(str(run_config))
        if run.env.backend == "libero":  # what the policy was trained to see
            env = {"image_protocol": run.env.image_protocol, "image_size": run.env.image_size}
        data["placement"] = to_dict(run.placement)
    env.update(backend="libero", task=suite, cameras=list(cameras), auto_reset=False,
               num_envs=num_envs or len(os.sched_getaffinity(0)))
    data["env"] = env
    sources: dict[str, str] = {}
    data = apply_overrides(data, overrides, sources)
    if data["env"].get("task", suite) != suite or data["env"].get("backend") != "libero":
        raise ConfigError("env.task and env.backend are set by --benchmark; drop those overrides")
    try:
        return from_dict(BenchmarkRun, data)
    except ConfigError as exc:
        raise ConfigError(f"{COMMAND_LINE if exc.key in sources else 'benchmark settings'}: {exc}", key=exc.key) from None


def check_policy_fits(policy: Any, env_cfg: EnvConfig, policy_dir: Path) -> None:
    """A ConfigError when the checkpoint cannot act in LIBERO: other action size, cameras LIBERO lacks."""
    from simulators.libero_suites import ACTION_DIM, CAMERAS

    if policy.action_dim != ACTION_DIM:
        raise ConfigError(f"{policy_dir} predicts {policy.action_dim}-d actions but LIBERO takes {ACTION_DIM} "
                          "(end-effector delta pose + gripper); evaluate a checkpoint trained for a 7-d action space")
    unknown = [c for c in policy.cameras if c not in CAMERAS]
    if unknown:
        raise ConfigError(f"{policy_dir} reads camera(s) {unknown} that LIBERO does not render (it has {list(CAMERAS)})")
    missing = [c for c in policy.cameras if c not in env_cfg.cameras]
    if missing:
        raise ConfigError(f"{policy_dir} reads cameras {list(policy.cameras)} but env.cameras={list(env_cfg.cameras)} "
                          f"lacks {missing}; drop the env.cameras override")


def choose_unnorm_key(norm_stats: dict[str, Any], suite: str, requested: str | None) -> str | None:
    """The requested key, else the suite's (or "<suite>_no_noops", as run_libero_eval picks it), else None."""
    if requested is not None:
        return requested
    return next((k for k in (suite, f"{suite}_no_noops") if k in norm_stats), None)


__all__ = ["BenchmarkDecoding", "BenchmarkModel", "BenchmarkRun", "PUBLISHED_IMAGE", "benchmark_settings",
           "check_policy_fits", "choose_unnorm_key", "locate_policy"]
