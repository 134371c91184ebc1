"""The top-level `Config` of a run: one typed section per part of the platform.

Sections owned by the parts live beside this file (`env.py`, `model.py`, `algorithm.py`); the
sections that only the runner and placement read are defined here. The `model` and `env` sections
are typed per family and per backend (`families/`, `backends/`, chosen by `model.family` and
`env.backend`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from vla_rl.config.algorithm import AlgorithmConfig
from vla_rl.config.core import check
from vla_rl.config.env import EnvConfig
from vla_rl.config.model import ModelConfig
from vla_rl.config.warmstart import WarmstartConfig
from vla_rl.config.placement import PlacementConfig


CHOICE_SECTIONS = {"model": ModelConfig, "env": EnvConfig}
"""Sections whose class one of their keys picks (`model.family`, `env.backend`; vla_rl/config/choice.py)."""


@dataclass
class RolloutConfig:
    """How experience is collected each iteration."""

    steps_per_iteration: int = 32
    """Policy calls (chunks) per environment per iteration: the length T of the rollout window."""
    temperature: float = 1.0
    """Sampling temperature for training rollouts (the learner recomputes log-probs at it)."""
    eval_mode: Literal["greedy", "sample"] = "greedy"
    """Decoding during evaluation."""
    eval_temperature: float = 0.6
    """Temperature when eval_mode is "sample" (0.6 is the field's usual eval temperature)."""

    def __post_init__(self) -> None:
        check(self.steps_per_iteration >= 1, "steps_per_iteration must be >= 1")
        check(self.temperature > 0, "temperature must be > 0 (use eval_mode=greedy for argmax decoding)")
        check(self.eval_temperature > 0, "eval_temperature must be > 0")


@dataclass
class RunnerConfig:
    """The outer loop: how long to train, when to evaluate, save and log, and where outputs go."""

    iterations: int = 10
    """Training iterations (each: roll out, compute advantages, update)."""
    max_env_steps: int | None = None
    """Stop training once this many env steps were collected (a budget for equal-cost comparisons)."""
    max_train_seconds: float | None = None
    """Stop training once this many seconds were spent after setup (evaluation time included)."""
    eval_initial: bool = True
    """Evaluate the starting policy before training, for the initial-vs-final summary."""
    eval_every: int = 0
    """Evaluate every this many iterations (0: only after the last one)."""
    eval_episodes: int = 16
    """Episodes per evaluation (spread over the environments, one fixed seed list per run)."""
    eval_every_episodes: int | None = None
    """Episodes of the evaluations every `eval_every` iterations: the first ones of the evaluation seeds (held
    out like them), so the curve costs a bounded share of the run; null: all `eval_episodes`. The initial
    and final evaluations always run all of them."""
    log_ref_kl: bool = True
    """Log train/ref_kl, KL from the policy to the initial one, each iteration (keeps a frozen copy of the
    initial policy in memory: turn off for a model that does not fit twice)."""
    eval_seed: int = 1_000_000
    """First reset id of the evaluation episodes (kept apart from the training ids)."""
    save_every: int = 0
    """Write a checkpoint every this many iterations (0: only at the end)."""
    video: bool = True
    """Record one evaluation episode to mp4 after the final evaluation."""
    output_dir: str = "runs"
    """Parent folder of run folders; each run writes to `output_dir/name`."""
    name: str = "quickstart"
    """Run name: the folder under output_dir holding config, logs, checkpoints and videos."""
    seed: int = 0
    """Seed of torch/numpy RNGs (sampling, minibatch order)."""
    resume: str | None = None
    """Checkpoint folder to resume from (weights, optimizer, RNG streams, reset cursor, iteration)."""

    def __post_init__(self) -> None:
        check(self.iterations >= 0, "iterations must be >= 0")
        check(self.eval_every >= 0 and self.save_every >= 0, "eval_every and save_every must be >= 0")
        check(self.eval_episodes >= 1, "eval_episodes must be >= 1")
        check(self.eval_every_episodes is None or 1 <= self.eval_every_episodes <= self.eval_episodes,
              "eval_every_episodes must be null or between 1 and eval_episodes (a subset of the evaluation seeds)")
        check(self.max_env_steps is None or self.max_env_steps >= 1, "max_env_steps must be null or >= 1")
        check(self.max_train_seconds is None or self.max_train_seconds > 0, "max_train_seconds must be null or > 0")
        check(bool(self.name) and "/" not in self.name, "name must be a non-empty folder name without '/'")


@dataclass
class Config:
    """A whole run: what to train, on what, how, and where."""

    env: EnvConfig = field(default_factory=EnvConfig)
    """The simulator, task and environment count."""
    model: ModelConfig = field(default_factory=ModelConfig)
    """The policy family and its size or checkpoint."""
    algorithm: AlgorithmConfig = field(default_factory=AlgorithmConfig)
    """The RL algorithm and every option of it."""
    rollout: RolloutConfig = field(default_factory=RolloutConfig)
    """Experience collection."""
    runner: RunnerConfig = field(default_factory=RunnerConfig)
    """Training length, evaluation, checkpoints, outputs."""
    placement: PlacementConfig = field(default_factory=PlacementConfig)
    """Where components run."""
    warmstart: WarmstartConfig = field(default_factory=WarmstartConfig)
    """Demonstrations and supervised fine-tuning before RL (off unless enabled)."""

    def __post_init__(self) -> None:
        algo, env = self.algorithm, self.env
        if algo.uses_groups:
            check(not env.auto_reset, f"algorithm.advantage={algo.advantage} runs fixed-length grouped episodes: "
                  "set env.auto_reset=false")
            check(env.num_envs % algo.group_size == 0, f"env.num_envs={env.num_envs} must be a multiple of "
                  f"algorithm.group_size={algo.group_size} (each group shares one reset id)")
        else:
            check(env.auto_reset, f"algorithm.advantage={algo.advantage} bootstraps continuing episodes: "
                  "set env.auto_reset=true")
        check(not algo.uses_critic or self.model.value_head, f"algorithm.name={algo.name} trains a critic: "
              "set model.value_head=true")
