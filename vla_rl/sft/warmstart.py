"""Warm start of a run: scripted demonstrations -> SFT -> a policy checkpoint RL starts from.

`make_demos(config, out)` generates `warmstart.demos` successful demonstrations in the run's
environment; `run_sft(config, demos, out)` trains `config.model` on them and saves
    <out>/policy/        the policy (`save_pretrained`): `model.pretrained=<out>/policy` loads it
    <out>/config.yaml    the run config (so `vla-rl eval <out>` evaluates the SFT policy)
    <out>/sft.json       SFT summary, held-out curve and the demos it used
    <out>/logs/metrics.jsonl  per-step SFT diagnostics
`warm_start(config, run_dir)` runs both inside a training run (under `<run>/demos` and `<run>/sft`)
and returns the config whose `model.pretrained` is the SFT policy; the runner's initial evaluation
is then the SFT policy's evaluation on the run's held-out evaluation seeds.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from rich.console import Console

from vla_rl.config.core import to_dict
from vla_rl.config.env import EnvConfig
from vla_rl.config.loader import dump_config
from vla_rl.config.schema import Config
from vla_rl.demos.format import DemoSet, DemoWriter, load_demos
from vla_rl.demos.generate import GenerationStats, demo_metadata, generate_demos
from vla_rl.sft.trainer import SFTResult, train_sft

SFT_SUMMARY = "sft.json"


@dataclass
class WarmstartResult:
    demos: DemoSet
    demo_stats: GenerationStats | None
    """None when the demos were read from `warmstart.demos_dir`."""
    sft: SFTResult
    sft_dir: Path
    """Folder with policy/, config.yaml, sft.json."""

    @property
    def policy_dir(self) -> Path:
        return self.sft_dir / "policy"


def demo_env_config(config: Config) -> EnvConfig:
    """The env that generates a run's demos: the run's, with `warmstart.demo_envs` envs (never more than
    demos), no auto-reset, and episodes that end on success."""
    env, ws = config.env, config.warmstart
    n = min(ws.demo_envs or env.num_envs, ws.demos)
    workers = None if env.num_workers is None else min(env.num_workers, n)
    return replace(env, num_envs=n, num_workers=workers, auto_reset=False, terminate_on_success=True)


def make_demos(config: Config, out_dir: str | Path, progress: bool = True) -> tuple[DemoSet, GenerationStats]:
    """Generate `config.warmstart.demos` scripted demos in `config.env` into `out_dir`."""
    from simulators.registry import make_env

    ws = config.warmstart
    env = make_env(demo_env_config(config))
    try:
        spec = env.spec
        meta = demo_metadata(env, source=f"scripted:{spec.backend}/{spec.task}")
        writer = DemoWriter(out_dir, {**meta, "action_noise": ws.demo_noise, "first_reset_id": ws.demo_seed})
        _, stats = generate_demos(env, ws.demos, ws.demo_seed, writer=writer, progress=progress,
                                  action_noise=ws.demo_noise)
        writer.meta.update(attempts=stats.attempts, failed_reset_ids=stats.failed_reset_ids)
        writer.close()
    finally:
        env.close()
    return load_demos(out_dir), stats


def check_demos_match(config: Config, demos: DemoSet) -> None:
    """Refuse demos recorded in another task or with other observations than the run's env."""
    meta, env = demos.meta, config.env
    problems = []
    if (meta["backend"], meta["task"]) != (env.backend, env.task):
        problems.append(f"they are {meta['backend']}/{meta['task']}, the run is {env.backend}/{env.task}")
    missing = [c for c in env.cameras if c not in meta["cameras"]]
    if missing:
        problems.append(f"they lack camera(s) {missing}")
    if list(meta["image_size"]) != list(env.image_hw):
        problems.append(f"their images are {meta['image_size']}, the env renders {list(env.image_hw)}")
    if problems:
        raise ValueError(f"demos in {demos.root} do not fit this run: {'; '.join(problems)}. Generate new ones "
                         "(leave warmstart.demos_dir unset) or change the env section to match")


def _write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n")


def run_sft(config: Config, demos: DemoSet, out_dir: str | Path, progress: bool = True) -> tuple[Any, SFTResult]:
    """Build `config.model` for the demos' env, train it on them, save it under `out_dir`. Returns (policy, result)."""
    from vla_rl.models.registry import build_policy
    from vla_rl.metrics_log import MetricsLog
    from vla_rl.serve.schema import SCHEMA_FILE, schema_for_env

    out = Path(out_dir)
    meta = demos.meta
    from vla_rl.threads import torch_threads

    policy = build_policy(config.model, action_dim=meta["action_dim"], cameras=tuple(meta["cameras"]),
                          proprio_dim=meta["proprio_dim"], seed=config.runner.seed,
                          gripper_convention=meta["gripper_convention"])
    log = MetricsLog(out / "logs")
    threads = config.placement.train_threads or config.placement.torch_threads  # as the actor trains in RL
    try:
        with torch_threads(threads):
            result = train_sft(policy, list(demos), config.warmstart, seed=config.runner.seed, progress=progress,
                               log=log.write)
    finally:
        log.close()
    policy.save_pretrained(str(out / "policy"))
    (out / "config.yaml").write_text(dump_config(config))
    schema = schema_for_env(tuple(config.env.cameras), meta["proprio_dim"], reads_proprio=policy.reads_proprio)
    _write_json(out / SCHEMA_FILE, to_dict(schema))
    _write_json(out / SFT_SUMMARY, {"demos_dir": str(demos.root), "demos": len(demos), "demo_steps": demos.num_steps,
                                    **result.summary(), "holdout_curve": result.holdout})
    return policy, result


def warm_start(config: Config, run_dir: str | Path, console: Console | None = None,
               progress: bool = True) -> tuple[Config, WarmstartResult]:
    """Demos (or `warmstart.demos_dir`) then SFT inside `run_dir`; returns the RL config starting from the SFT policy."""
    console = console or Console(stderr=True)
    ws, run_dir = config.warmstart, Path(run_dir)
    stats = None
    if ws.demos_dir is not None:
        demos = load_demos(ws.demos_dir)
        console.print(f"warm start: {len(demos)} demos from {ws.demos_dir}")
    else:
        demos, stats = make_demos(config, run_dir / "demos", progress)
        console.print(f"warm start: {stats.successes} scripted demos ({stats.env_steps} env steps, "
                      f"{stats.success_rate:.0%} of {stats.attempts} attempts solved) in {stats.seconds:.0f} s")
    check_demos_match(config, demos)
    sft_dir = run_dir / "sft"
    _, result = run_sft(config, demos, sft_dir, progress)
    summary = result.summary()
    console.print(f"warm start: SFT {result.steps} steps in {result.seconds:.0f} s, held-out loss "
                  f"{summary['holdout_loss_initial'] or float('nan'):.3f} -> {summary['holdout_loss_final'] or float('nan'):.3f}, "
                  f"greedy action L1 {summary['holdout_action_l1_final'] or float('nan'):.3f}")
    # The RL phase starts from the SFT policy; its config says so (and that no warm start is left to run).
    rl_config = replace(config, model=replace(config.model, pretrained=str(sft_dir / "policy")),
                        warmstart=replace(ws, enabled=False))
    return rl_config, WarmstartResult(demos=demos, demo_stats=stats, sft=result, sft_dir=sft_dir)


__all__ = ["SFT_SUMMARY", "WarmstartResult", "check_demos_match", "make_demos", "run_sft", "warm_start"]
