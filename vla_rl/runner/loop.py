"""The training loop. One iteration reads like the algorithm:

    sync weights -> roll out -> advantages -> update -> log   (every K: evaluate, checkpoint)

each phase under a named timer. Where components run is the placement's business (`workers`);
the loop only calls them. A data-parallel run (a distributed engine under torchrun) is one more
placement (placement/data_parallel.py): each rank runs this same loop on its share, and the few
numbers that must agree across ranks go through `workers.comm`, the identity in one process.
"""

from __future__ import annotations

import copy
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from rich.console import Console

from placement.registry import build_workers
from vla_rl.checkpoints import (TrainerState, capture_rng, load_trainer_state, resolve_checkpoint, restore_rng,
                                save_checkpoint)
from vla_rl.config.core import to_dict
from vla_rl.config.loader import dump_config
from vla_rl.config.schema import Config
from vla_rl.eval.episode_stats import EpisodeStats
from vla_rl.eval.episodes import evaluate_policy, write_eval_record
from vla_rl.progress import progress_bar
from vla_rl.runner.buffer import RolloutBuffer
from vla_rl.runner.collect import Rollout, collect_episodes, collect_window, one_stage
from vla_rl.runner.timers import PhaseTimers
from vla_rl.runner.update import compute_advantages, update_policy
from vla_rl.seeding import seed_everything
from vla_rl.serve.schema import schema_for_env


@dataclass
class RunSummary:
    run_dir: Path
    initial_eval: EpisodeStats | None
    final_eval: EpisodeStats | None
    iterations: int
    env_steps: int
    policy_actions: int
    wall_seconds: float
    phase_seconds: dict[str, float] = field(default_factory=dict)
    checkpoint: Path | None = None
    video: Path | None = None


class Runner:
    """Trains `config` end to end; `run()` returns a `RunSummary`."""

    def __init__(self, config: Config, console: Console | None = None, progress: bool = True) -> None:
        self.config = config
        self.run_dir = Path(config.runner.output_dir) / config.runner.name
        self.run_dir.mkdir(parents=True, exist_ok=True)
        seed_everything(config.runner.seed)
        self.timers = PhaseTimers()
        with self.timers.phase("setup"):
            self.workers = build_workers(config)
        self.comm = self.workers.comm
        self.console = console or Console(stderr=True, quiet=not self.workers.is_main)
        self.progress = progress and self.workers.is_main
        if self.workers.is_main:
            (self.run_dir / "config.yaml").write_text(dump_config(config))
        self.env = self.workers.env
        self.policy = self.workers.policy
        self.rollout = self.workers.rollout  # what acts in rollouts: the policy itself, or a separate worker
        self.generator = torch.Generator().manual_seed(config.runner.seed)
        self.ref_policy = None  # the frozen initial policy (taken before resume): what the KL penalty pulls
        if config.algorithm.kl_coef > 0 or config.runner.log_ref_kl:  # toward, and what train/ref_kl measures
            self.ref_policy = copy.deepcopy(self.policy).eval().requires_grad_(False)
        self.iteration = 0
        self.prior_train_seconds = 0.0
        self.env_steps = 0
        self.policy_actions = 0
        self.resumed_obs = None
        """The observation a resumed PPO window continues from (None: start with env.reset())."""
        if config.runner.resume:
            self._resume(config.runner.resume)
        self.log = self.workers.open_log(self.run_dir / "logs")

    # ---- checkpoints ------------------------------------------------------------------------
    def _resume(self, path: str) -> None:
        checkpoint = resolve_checkpoint(path)
        from vla_rl.models.registry import load_policy

        loaded = load_policy(str(checkpoint / "policy"))
        self.policy.load_state_dict(loaded.state_dict())
        state = load_trainer_state(checkpoint)
        self.workers.engine.load_state_dict(state.optimizer)
        restore_rng(state.rng)
        self.generator.set_state(state.extra["generator"])
        self.workers.load_state_dict(state.extra, self.generator)
        self.env.set_reset_cursor(state.reset_cursor)
        self.iteration = state.iteration
        self.env_steps = state.extra.get("env_steps", 0)
        self.policy_actions = state.extra.get("policy_actions", 0)
        self.prior_train_seconds = state.extra.get("train_seconds", 0.0)
        if "env_state" in state.extra:  # episodes in flight when the checkpoint was written continue
            self.resumed_obs = self.env.set_state({**state.extra["env_state"], "obs": state.extra["obs"]})
        self.console.print(f"resumed from {checkpoint} at iteration {self.iteration}")

    def save(self, obs=None) -> Path:
        """Write a checkpoint; `obs` (the observation a PPO window continues from) adds the episodes in
        flight (the env's replay log, placement/replay_env.py), so that a resume continues them exactly."""
        self.workers.sync_weights()
        extra = {"generator": self.generator.get_state(), "env_steps": self.env_steps,
                 "policy_actions": self.policy_actions, "train_seconds": self._train_seconds(),
                 **self.workers.state_dict(self.generator)}
        if obs is not None:
            env_state = self.env.get_state(obs)
            extra.update(env_state=env_state, obs=env_state.pop("obs"))  # (the checkpoint keeps them apart)
        state = TrainerState(
            iteration=self.iteration,
            reset_cursor=self.env.get_reset_cursor(),
            optimizer=self.workers.engine.state_dict(),
            rng=capture_rng(),
            extra=extra,
        )
        path = None
        if self.workers.is_main:
            spec = self.env.spec
            schema = schema_for_env(spec.cameras, spec.proprio_dim, reads_proprio=self.policy.reads_proprio)
            path = save_checkpoint(self.run_dir / "checkpoints", self.policy, state, dump_config(self.config),
                                   extra_files={"serve_schema.json": json.dumps(to_dict(schema), indent=2) + "\n"})
        return self.comm.from_main(path)  # (every rank waits for the main one to write it)

    # ---- phases --------------------------------------------------------------------------------
    def evaluate(self, record_video: bool = False, episodes: int | None = None) -> tuple[EpisodeStats, Path | None]:
        """Greedy (or configured) episodes on the first `episodes` evaluation seeds (None: all of them)."""
        cfg = self.config
        self.workers.sync_weights()
        count = cfg.runner.eval_episodes if episodes is None else episodes
        ids = self.comm.shard([cfg.runner.eval_seed + i for i in range(count)])
        sink, writer, video_path = None, None, None
        if record_video and self.workers.is_main:
            from simulators.video import EpisodeVideo

            video_path = self.run_dir / "videos" / f"eval-iter-{self.iteration:06d}.mp4"
            writer = EpisodeVideo(str(video_path), fps=self.env.spec.control_hz)
            sink = writer.add
        self.env.auto_reset = False
        try:
            result = evaluate_policy(self.env, self.policy, ids, mode=cfg.rollout.eval_mode,
                                     temperature=cfg.rollout.eval_temperature, frame_sink=sink,
                                     progress=self.progress)
        finally:
            self.env.auto_reset = cfg.env.auto_reset
            if writer is not None:
                writer.close()
        return self.comm.merged(result), video_path

    def train_iteration(self, obs, buffer: RolloutBuffer):
        cfg = self.config
        with self.timers.phase("sync_weights"):
            self.workers.sync_weights()
        with self.timers.phase("rollout"), self.workers.phase("rollout"):
            rollout = self.collect(buffer, obs)
        with self.timers.phase("advantages"):
            adv_metrics = compute_advantages(cfg.algorithm, buffer, rollout.last_values, self.comm)
        with self.timers.phase("train"), self.workers.phase("train"):
            trained = self.workers.engine.policy  # the policy itself, or the engine's sharded module
            trained.train()
            train_metrics = update_policy(cfg.algorithm, cfg.rollout, trained, self.workers.engine, buffer,
                                          self.generator, self.ref_policy, self.comm)
        self.iteration += 1
        self.policy_actions += rollout.policy_calls
        env_steps = rollout.policy_calls * self.policy.action_chunk
        self.env_steps += env_steps
        times = self.timers.pop()
        metrics = {**rollout.stats.metrics("env"), **adv_metrics, **train_metrics,
                   **{f"time/{k}": v for k, v in times.items()},
                   "rollout/env_steps_per_s": env_steps / max(times.get("rollout", 1e-9), 1e-9),
                   "rollout/total_env_steps": float(self.env_steps)}
        self.log.write(self.iteration, metrics)
        return rollout.obs, metrics

    def collect(self, buffer: RolloutBuffer, obs) -> Rollout:
        """One window from continuing envs (auto-reset) or one batch of grouped episodes, filled by the
        placement's pipeline stages (one stage of all envs: sequentially)."""
        cfg, stages = self.config, self.workers.stages or one_stage(self.env)
        self.policy.eval()
        last_values = None
        if cfg.env.auto_reset:
            obs, stats, last_values = collect_window(self.env, self.rollout, buffer, obs, cfg.rollout.temperature,
                                                     stages, self.progress)
        else:
            ids = self.env.next_group_ids(cfg.algorithm.group_size)
            stats = collect_episodes(self.env, self.rollout, buffer, ids, cfg.rollout.temperature, stages,
                                     self.progress, all_ended=self.comm.all)
            buffer["group_ids"] = torch.tensor(ids)
            obs = None
        return Rollout(obs=obs, stats=self.comm.merged(stats), last_values=last_values,
                       policy_calls=int(self.comm.total(buffer.t * self.env.num_envs)))

    def _train_seconds(self) -> float:
        """Seconds spent in `run` so far, across resumes (the `runner.max_train_seconds` budget)."""
        started = getattr(self, "_run_start", None)
        return self.prior_train_seconds + (time.perf_counter() - started if started is not None else 0.0)

    def _budget_spent(self) -> bool:
        runner = self.config.runner
        if runner.max_env_steps is not None and self.env_steps >= runner.max_env_steps:
            return True
        spent = runner.max_train_seconds is not None and self._train_seconds() >= runner.max_train_seconds
        return self.comm.any(spent)  # every rank stops at the same iteration

    # ---- the loop ---------------------------------------------------------------------------------
    def run(self) -> RunSummary:
        cfg = self.config
        start = self._run_start = time.perf_counter()
        initial = None
        if cfg.runner.eval_initial and self.iteration == 0:
            with self.timers.phase("eval"):
                initial, _ = self.evaluate()
            self.log.write(0, initial.metrics("eval"))
            self.console.print(f"initial eval: success {initial.success_rate:.1%} over {len(initial.successes)} episodes")
        buffer = RolloutBuffer(cfg.rollout.steps_per_iteration, self.env.num_envs)
        obs = self.resumed_obs if self.resumed_obs is not None else self.env.reset() if cfg.env.auto_reset else None
        phase_totals: dict[str, float] = {}
        bar = progress_bar(total=cfg.runner.iterations, initial=self.iteration, desc="train", unit="it", leave=True,
                           enabled=self.progress)
        while self.iteration < cfg.runner.iterations and not self._budget_spent():
            obs, metrics = self.train_iteration(obs, buffer)
            bar.update(1)
            bar.set_postfix(success=f"{metrics.get('env/success_rate', float('nan')):.2f}",
                            loss=f"{metrics.get('train/loss', float('nan')):.3f}")
            last = self.iteration == cfg.runner.iterations or self._budget_spent()
            if cfg.runner.eval_every and self.iteration % cfg.runner.eval_every == 0 and not last:
                with self.timers.phase("eval"):
                    result, _ = self.evaluate(episodes=cfg.runner.eval_every_episodes)
                self.log.write(self.iteration, result.metrics("eval"))
                obs = self.env.reset() if cfg.env.auto_reset else None
            if cfg.runner.save_every and self.iteration % cfg.runner.save_every == 0 and not last:
                with self.timers.phase("checkpoint"):
                    self.save(obs)
        bar.close()
        with self.timers.phase("eval"):
            final, video = self.evaluate(record_video=cfg.runner.video)
        self.log.write(self.iteration, final.metrics("eval"))
        if self.workers.is_main:
            write_eval_record(self.run_dir / "eval" / "final.json", final, self.iteration, self.env_steps, cfg)
        with self.timers.phase("checkpoint"):
            checkpoint = self.save()
        for name, seconds in self.timers.totals.items():
            phase_totals[name] = seconds
        return RunSummary(run_dir=self.run_dir, initial_eval=initial, final_eval=final, iterations=self.iteration,
                          env_steps=self.env_steps, policy_actions=self.policy_actions,
                          wall_seconds=time.perf_counter() - start, phase_seconds=phase_totals,
                          checkpoint=checkpoint, video=video)

    def close(self) -> None:
        self.log.close()
        self.workers.close()
