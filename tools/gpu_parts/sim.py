"""Part (d): ManiSkill3 PushCube on GPU physics from RGB (128 px), 256 and 1024 envs: env steps/s of our
`maniskill_gpu` backend against a raw ManiSkill loop over the same env.

raw       the ManiSkill env our backend's scene wraps (`maniskill_scene.make_env`: gym.make with our
          observation/control/reward settings) stepped directly, `env.step(actions)`: physics + render.
ours      `ManiSkillGPUVectorEnv` (one scene), `chunk_step` of 1-step chunks: physics, render, the
          episode bookkeeping and the observation dict, all on the GPU.
ours k=8  8-step chunks (OFT's): renders only at the chunk's last step (and where an episode ends).

Resets are timed too: a raw `reset(seed=0)` of all envs vs ours, which resets env by env so that a
reset id names one state (docs/simulators.md): at 1024 envs that is 1024 ManiSkill partial resets,
the figure to watch. The CPU smoke runs the same on CPU physics, one env.
"""

from __future__ import annotations

import time
from typing import Any

import torch

from gpu_parts.common import Setting, Skip, row

TASK = "PushCube-v1"


def backends(s: Setting) -> tuple[str, str]:
    if s.cuda:
        gpu = torch.cuda.current_device()
        return f"physx_cuda:{gpu}", f"sapien_cuda:{gpu}"
    return "physx_cpu", "sapien_cpu"


def require_maniskill(s: Setting) -> None:
    try:
        import mani_skill  # noqa: F401
        import sapien  # noqa: F401
    except ImportError as e:
        raise Skip(f"ManiSkill is not importable ({e.name}); install vla-rl[maniskill] (tools/setup.sh)") from None
    if not s.smoke and not s.cuda:
        raise Skip("GPU physics needs CUDA")


def make_ours(s: Setting, n: int, scenes: int = 1, max_steps: int = 50):
    from simulators.maniskill_gpu import ManiSkillGPUVectorEnv
    from vla_rl.config.env import EnvConfig

    sim, render = backends(s)
    cfg = EnvConfig(backend="maniskill_gpu", task=TASK, num_envs=n, num_workers=scenes, image_size=s.image_size,
                    reward_mode="dense", max_episode_steps=max_steps)
    return ManiSkillGPUVectorEnv(cfg, sim_backend=sim, render_backend=render)


def _actions(env_device: torch.device, n: int, k: int | None, dim: int = 7) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    shape = (n, dim) if k is None else (n, k, dim)
    return (torch.rand(shape, generator=g) * 2 - 1).mul(0.5).to(env_device)


def measure(s: Setting, n: int) -> dict[str, Any]:
    """Both loops on the same ManiSkill env: the raw loop steps our backend's scene env directly."""
    steps = s.env_steps
    ours = make_ours(s, n, max_steps=100 * steps)  # no episode ends inside the timed loops
    try:
        t_reset = s.timed(lambda: ours.reset(list(range(n))), repeats=1, warmup=0)
        raw = ours._blocks[0].env  # the unwrapped ManiSkill env our scene wraps
        t_raw_reset = s.timed(lambda: raw.reset(seed=0), repeats=1, warmup=0)
        ours.reset(list(range(n)))  # our bookkeeping again after the raw reset
        a = _actions(ours.device, n, None)

        def raw_loop():
            for _ in range(steps):
                raw.step(a)

        one, eight = a[:, None], _actions(ours.device, n, 8)

        def ours_loop():
            for _ in range(steps):
                ours.chunk_step(one)

        chunks = max(steps // 8, 1)
        t_raw, t_ours = s.timed(raw_loop, repeats=2), s.timed(ours_loop, repeats=2)
        t_k8 = s.timed(lambda: [ours.chunk_step(eight) for _ in range(chunks)], repeats=2)
    finally:
        ours.close()
    s.free_memory()
    raw_sps, ours_sps, k8_sps = n * steps / t_raw, n * steps / t_ours, n * 8 * chunks / t_k8
    return {"envs": n, "steps": steps, "raw_steps_per_s": raw_sps, "ours_steps_per_s": ours_sps,
            "ours_chunk8_steps_per_s": k8_sps, "ours_over_raw": ours_sps / raw_sps, "raw_reset_s": t_raw_reset,
            "ours_reset_s": t_reset}


def run(s: Setting) -> dict[str, Any]:
    require_maniskill(s)
    rows, data = [], []
    for n in s.env_counts:
        m = measure(s, n)
        data.append(m)
        rows.append(row(f"ManiSkill {TASK} RGB {s.image_size} px, {n} envs", f"{m['ours_steps_per_s']:,.0f} env steps/s",
                        f"raw loop {m['raw_steps_per_s']:,.0f} (ours/raw {m['ours_over_raw']:.2f}x); chunks of 8: "
                        f"{m['ours_chunk8_steps_per_s']:,.0f}; reset all: ours {m['ours_reset_s']:.2f} s, raw "
                        f"{m['raw_reset_s']:.2f} s"))
    return {"rows": rows, "env_counts": data}


__all__ = ["backends", "make_ours", "require_maniskill", "run"]
