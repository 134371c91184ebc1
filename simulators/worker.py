"""The loop a simulator worker process runs: build `SingleEnv`s, then answer commands on a pipe.

Started by `SubprocVectorEnv` with the `spawn` start method (fork hangs after a Vulkan or EGL
context exists). Before importing the simulator it applies the backend's environment variables
(renderer selection), limits math libraries to one thread and closes stdin, so a library that asks
a question on stdin (ManiSkill's asset download prompt) fails at once instead of hanging.

Protocol (parent -> worker, one tuple per message):
    ("reset", [(local_index, reset_id), ...])         -> [(obs, episode_max_steps), ...]
    ("chunk", (actions (n, K, A), active [n], steps_left [n]))
                                                      -> [None | {"rewards", "successes", "terminated", "obs"}]
    ("get_state", [local_index, ...])                 -> [state, ...]
    ("set_state", [(local_index, state), ...])        -> [obs, ...]
    ("close", None)                                   -> the worker exits
Replies are ("ok", payload) or ("error", message). The first message is ("ready", SingleEnvInfo)
or ("error", message) when the env cannot be built.
"""

from __future__ import annotations

import importlib
import os
import sys
import traceback
from typing import Any

import numpy as np

THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS")


def _load(factory: str) -> Any:
    module, _, name = factory.partition(":")
    return getattr(importlib.import_module(module), name)


def _run_chunk(env: Any, actions: np.ndarray, steps_left: int) -> dict[str, Any]:
    """Step one env through up to K actions, stopping when the task ends the episode or time runs out.
    Only the chunk's last observation is returned, so the steps before the last are `step_unobserved`."""
    rewards: list[float] = []
    successes: list[bool] = []
    terminated = False
    obs = None
    n = min(len(actions), steps_left)
    for k in range(n):
        out = env.step(actions[k]) if k == n - 1 else env.step_unobserved(actions[k])
        rewards.append(float(out.reward))
        successes.append(bool(out.success))
        obs = out.obs
        if out.terminated:
            terminated = True
            break
    if obs is None and n:
        obs = env.observe()  # an unobserved step ended the episode
    return {"rewards": rewards, "successes": successes, "terminated": terminated, "obs": obs}


def _handle(envs: list[Any], cmd: str, payload: Any) -> Any:
    if cmd == "reset":
        return [(envs[i].reset(int(rid)), envs[i].episode_max_steps()) for i, rid in payload]
    if cmd == "chunk":
        actions, active, steps_left = payload
        return [_run_chunk(env, actions[i], steps_left[i]) if active[i] else None for i, env in enumerate(envs)]
    if cmd == "get_state":
        return [envs[i].get_state() for i in payload]
    if cmd == "set_state":
        return [envs[i].set_state(state) for i, state in payload]
    raise ValueError(f"unknown worker command {cmd!r}")


def worker_main(conn: Any, factory: str, kwargs: dict[str, Any], num_local: int, env_vars: dict[str, str]) -> None:
    """Entry point of a worker process: `factory` is "module:SingleEnvClass", built `num_local` times."""
    os.environ.update(env_vars)
    for var in THREAD_VARS:
        os.environ.setdefault(var, "1")
    sys.stdin.close()
    sys.stdin = open(os.devnull)  # noqa: SIM115 - a prompt must hit EOF at once, never block
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        pass
    envs: list[Any] = []
    try:
        cls = _load(factory)
        envs = [cls(**kwargs) for _ in range(num_local)]
        conn.send(("ready", envs[0].info()))
    except BaseException as exc:  # noqa: BLE001 - report any build failure to the parent
        conn.send(("error", f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=4)}"))
        return
    try:
        while True:
            try:
                cmd, payload = conn.recv()
            except (EOFError, OSError):
                return  # parent is gone
            if cmd == "close":
                return
            try:
                conn.send(("ok", _handle(envs, cmd, payload)))
            except Exception as exc:  # noqa: BLE001 - the parent decides what a failure means
                conn.send(("error", f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=6)}"))
    finally:
        for env in envs:
            try:
                env.close()
            except Exception:  # noqa: BLE001 - closing is best effort
                pass
