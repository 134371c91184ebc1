"""Diagnostic: how does a cube-sliding policy fail? Greedy episodes, sorted by what the cube did.

    .venv/bin/python tools/failure_modes.py runs/quickstart/sft --episodes 64 [key=value ...]

Runs the checkpoint greedily on its run's evaluation seeds (`runner.eval_seed` onwards, the same
episodes `vla-rl eval --protocol config` runs) and reads the simulator's true poses at every step
(the privileged state the scripted demonstrator uses; the policy never sees it). Each episode is
one of: success; "untouched" (the cube moved less than 1 cm: the gripper never reached it);
"pushed short" (the cube moved but did not reach the goal). It also reports how far beside the
cube's line the gripper was while at pushing height, and how far pushed cubes drifted sideways.
Tasks: ManiSkill PushCube-v1 and PullCube-v1 (actors "cube" and "goal_region"). Prints a table and
writes JSON (default `<checkpoint>/failure_modes.json`).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Sequence

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

UNTOUCHED_M = 0.01
"""A cube that moved less than this (metres, in the plane) was not touched."""
PUSH_HEIGHT_M = 0.035
"""A TCP below this height is at pushing height (the cube is 4 cm tall)."""


@dataclass
class EpisodeTrace:
    """What one episode did, from privileged state."""

    reset_id: int
    success: bool
    steps: int
    cube_start: np.ndarray
    """(2,) cube xy at reset."""
    cube_xy: np.ndarray
    """(T, 2) cube xy after each step."""
    tcp: np.ndarray
    """(T, 3) TCP position after each step."""


@dataclass
class EpisodeVerdict:
    reset_id: int
    outcome: str
    """"success", "untouched" or "pushed_short"."""
    steps: int
    cube_moved_m: float
    sideways_drift_m: float
    """|cube y displacement| (pushes are along x)."""
    offset_at_push_height_m: float | None
    """Mean |TCP y - cube y| over the steps at pushing height; None if the TCP never got that low."""


def judge(trace: EpisodeTrace) -> EpisodeVerdict:
    """Sort one episode (see the module docstring)."""
    moved = trace.cube_xy[-1] - trace.cube_start
    distance = float(np.linalg.norm(moved))
    outcome = "success" if trace.success else ("untouched" if distance < UNTOUCHED_M else "pushed_short")
    low = trace.tcp[:, 2] < PUSH_HEIGHT_M
    offset = float(np.abs(trace.tcp[low, 1] - trace.cube_xy[low, 1]).mean()) if low.any() else None
    return EpisodeVerdict(trace.reset_id, outcome, trace.steps, distance, float(abs(moved[1])), offset)


def summarise(verdicts: Sequence[EpisodeVerdict]) -> dict[str, float | int | None]:
    """Counts per outcome and the mean geometry of each group."""
    def mean(values: list[float]) -> float | None:
        return float(np.mean(values)) if values else None

    by = {o: [v for v in verdicts if v.outcome == o] for o in ("success", "untouched", "pushed_short")}
    failed = by["untouched"] + by["pushed_short"]
    pushed = by["success"] + by["pushed_short"]
    return {
        "episodes": len(verdicts),
        **{o: len(vs) for o, vs in by.items()},
        "never_at_push_height": sum(v.offset_at_push_height_m is None for v in failed),
        "untouched_offset_m": mean([v.offset_at_push_height_m for v in by["untouched"] if v.offset_at_push_height_m is not None]),
        "pushed_sideways_drift_m": mean([v.sideways_drift_m for v in pushed]),
        "success_mean_steps": mean([float(v.steps) for v in by["success"]]),
    }


def run_episodes(env, policy, reset_ids: Sequence[int], progress: bool = True) -> list[EpisodeTrace]:
    """Greedy episodes of `policy` in `env` (auto-reset off), `env.num_envs` at a time."""
    from vla_rl.demos.privileged import read_privileged
    from vla_rl.progress import progress_bar

    n, traces = env.num_envs, []
    bar = progress_bar(total=len(reset_ids), desc="episodes", unit="ep", leave=True, enabled=progress)
    for first in range(0, len(reset_ids), n):
        ids = list(reset_ids[first:first + n])
        obs = env.reset(reset_ids=ids + [ids[-1]] * (n - len(ids)))
        starts = [s.objects["cube"].p[:2].copy() for s in read_privileged(env, obs)]
        cube, tcp = [[] for _ in range(n)], [[] for _ in range(n)]
        done, success = np.zeros(n, dtype=bool), np.zeros(n, dtype=bool)
        while not done.all():
            actions = policy.act(obs, mode="greedy").actions
            result = env.chunk_step(actions)
            obs = result.obs
            for i, state in enumerate(read_privileged(env, obs)):
                if not done[i]:
                    cube[i].append(state.objects["cube"].p[:2].copy())
                    tcp[i].append(state.tcp.p.copy())
            success |= np.asarray(result.info["success_once"], dtype=bool) & ~done
            done |= np.asarray(result.info["episode_done"], dtype=bool)
        for i, rid in enumerate(ids):
            traces.append(EpisodeTrace(rid, bool(success[i]), len(cube[i]), starts[i], np.array(cube[i]), np.array(tcp[i])))
        bar.update(len(ids))
    bar.close()
    return traces


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("checkpoint", help="checkpoint folder, checkpoints/ folder, or run folder (as `vla-rl eval`)")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides")
    parser.add_argument("--episodes", type=int, default=None, help="episodes (default: runner.eval_episodes)")
    parser.add_argument("--out", default=None, help="JSON path (default: <checkpoint>/failure_modes.json)")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)

    import torch
    from rich.console import Console
    from rich.table import Table

    from simulators.registry import make_env
    from vla_rl.checkpoints import resolve_checkpoint
    from vla_rl.config.loader import load_config
    from vla_rl.eval.manifest import config_ids
    from vla_rl.models.registry import load_policy

    checkpoint = resolve_checkpoint(args.checkpoint)
    overrides = list(args.overrides) + ([f"runner.eval_episodes={args.episodes}"] if args.episodes else [])
    config = load_config(str(checkpoint / "config.yaml"), overrides)
    if config.env.backend != "maniskill" or config.env.task not in ("PushCube-v1", "PullCube-v1"):
        raise SystemExit(f"failure_modes reads a cube and a goal region: it supports maniskill PushCube-v1 and "
                         f"PullCube-v1, not {config.env.backend}/{config.env.task}")
    torch.set_num_threads(1)
    policy = load_policy(str(checkpoint / "policy"))
    policy.eval()
    ids = list(config_ids(config))
    episodes = len(ids)
    env = make_env(replace(config.env, auto_reset=False))
    try:
        traces = run_episodes(env, policy, ids, progress=not args.no_progress)
    finally:
        env.close()
    verdicts = [judge(t) for t in traces]
    summary = summarise(verdicts)
    out = Path(args.out) if args.out else checkpoint / "failure_modes.json"
    out.write_text(json.dumps({"checkpoint": str(checkpoint), "reset_ids": ids, "summary": summary,
                               "episodes": [asdict(v) for v in verdicts]}, indent=2))

    table = Table(title=f"{config.env.task}: {checkpoint} (greedy, seeds {ids[0]}..{ids[-1]})")
    table.add_column("outcome")
    table.add_column("episodes", justify="right")
    table.add_column("geometry")
    cm = lambda x: "-" if x is None else f"{100 * x:.1f} cm"  # noqa: E731
    table.add_row("success", str(summary["success"]), f"mean {summary['success_mean_steps'] or 0:.1f} steps")
    table.add_row("untouched", str(summary["untouched"]), f"gripper {cm(summary['untouched_offset_m'])} beside the "
                  f"cube's line at pushing height; {summary['never_at_push_height']} failures never got that low")
    table.add_row("pushed short", str(summary["pushed_short"]),
                  f"pushed cubes drifted {cm(summary['pushed_sideways_drift_m'])} sideways on average")
    Console().print(table)
    print(f"failure_modes: {summary['success']}/{episodes} succeeded; details in {out}")
    return 0


if __name__ == "__main__":  # env workers are spawned: keep the run under this guard
    sys.exit(main(sys.argv[1:]))
