"""What every part of tools/gpu_check.py shares: the run's setting (GPU at published size, or the CPU
smoke at tiny size), timing that waits for the device, peak memory, the copy-kernel bandwidth, policy
builders and synthetic observations.

A part is a module with `run(setting) -> dict` returning {"rows": [...], ...raw numbers...}; each row
is {"item": ..., "value": ..., "compare": ...} (strings, one table line), or the part raises `Skip`
with the reason the table shows.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch

INSTRUCTIONS = ["pick up the red cube", "push the cube to the goal region", "stack the cube", "lift the peg upright"]


class Skip(Exception):
    """A part that cannot run here; its message is the reason printed as `skipped: <reason>`."""


@dataclass(frozen=True)
class Setting:
    """Sizes of one run: `gpu()` is what the check measures, `smoke()` the tiny CPU rehearsal of it."""

    smoke: bool
    device: torch.device
    dtype: str
    size: str
    """openvla size preset of every "7B" measurement."""
    batches: tuple[int, ...]
    env_counts: tuple[int, ...]
    image_size: int
    repeats: int
    env_steps: int
    """Steps per timed simulation loop."""
    extras: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def gpu(cls) -> "Setting":
        return cls(False, torch.device("cuda"), "bfloat16", "7b", (1, 8, 64), (256, 1024), 128, 5, 20)

    @classmethod
    def cpu_smoke(cls) -> "Setting":
        return cls(True, torch.device("cpu"), "float32", "tiny", (1, 2), (1,), 64, 1, 3)

    @property
    def cuda(self) -> bool:
        return self.device.type == "cuda"

    def sync(self) -> None:
        if self.cuda:
            torch.cuda.synchronize(self.device)

    def timed(self, fn: Callable[[], Any], repeats: int | None = None, warmup: int = 1) -> float:
        """Median seconds of `repeats` calls after `warmup` calls, each waited for on the device."""
        for _ in range(warmup):
            fn()
        self.sync()
        times = []
        for _ in range(repeats or self.repeats):
            start = time.perf_counter()
            fn()
            self.sync()
            times.append(time.perf_counter() - start)
        return float(statistics.median(times))

    def reset_peak(self) -> None:
        if self.cuda:
            torch.cuda.reset_peak_memory_stats(self.device)

    def peak_bytes(self) -> int | None:
        """Peak bytes torch allocated on the GPU since `reset_peak` (None on the CPU)."""
        return int(torch.cuda.max_memory_allocated(self.device)) if self.cuda else None

    def free_memory(self) -> None:
        import gc

        gc.collect()
        if self.cuda:
            torch.cuda.empty_cache()


def copy_bandwidth(s: Setting) -> float:
    """Bytes/s of a device-to-device copy (bytes read + bytes written), the floor's denominator."""
    n = (2 << 30) if s.cuda else (64 << 20)
    src = torch.randint(0, 255, (n,), dtype=torch.uint8, device=s.device)
    dst = torch.empty_like(src)
    t = s.timed(lambda: dst.copy_(src), repeats=10 if s.cuda else 3)
    del src, dst
    s.free_memory()
    return 2 * n / t


def build(s: Setting, family: str, *, cameras: tuple[str, ...] = ("main",), lora: bool = False,
          checkpointing: bool = False, value_head: bool = True, **kw: Any):
    """A random-weight policy of family `family` at the setting's size, built directly on its device."""
    from vla_rl.config.model import LoraConfig, ModelConfig
    from vla_rl.models.registry import build_policy

    cfg = ModelConfig(family=family, size=s.size, dtype=s.dtype, value_head=value_head,
                      gradient_checkpointing=checkpointing, lora=LoraConfig(enabled=lora), **kw)
    with torch.device(s.device):
        policy = build_policy(cfg, 7, cameras, 8, seed=0)
    return policy.to(s.device)


def make_obs(n: int, size: int, cameras: tuple[str, ...] = ("main",), seed: int = 0) -> dict[str, Any]:
    """Random uint8 frames, proprio and instructions for `n` envs (numpy, as a CPU backend gives them)."""
    rng = np.random.default_rng(seed)
    return {"images": {c: rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8) for c in cameras},
            "proprio": rng.normal(size=(n, 8)).astype(np.float32),
            "instruction": [INSTRUCTIONS[i % len(INSTRUCTIONS)] for i in range(n)]}


def gb(nbytes: float | None) -> str:
    return "n/a (CPU)" if nbytes is None else f"{nbytes / 1e9:.2f} GB"


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:.2f} ms"


def row(item: str, value: str, compare: str = "") -> dict[str, str]:
    return {"item": item, "value": value, "compare": compare}


__all__ = ["INSTRUCTIONS", "Setting", "Skip", "build", "copy_bandwidth", "gb", "make_obs", "ms", "row"]
