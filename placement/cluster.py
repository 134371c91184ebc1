"""The devices a plan places components on: GPUs, or CPU slots (cores) on a machine without one.

`detect_cluster` asks the backend what it has: torch on this machine (local), or the resources of
the Ray cluster this process is connected to. `placement.num_devices` may narrow it down; asking for
more than exists is a ConfigError. `pin_cpus` and `tensor_device` turn a component's device indices
into what a process does with them (CPU affinity, a torch device).
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator, Literal, Sequence

from simulators.affinity import set_process_cores
from vla_rl.config.core import ConfigError
from vla_rl.config.placement import PlacementConfig
from vla_rl.threads import torch_threads

DeviceKind = Literal["gpu", "cpu"]


@dataclass(frozen=True)
class Cluster:
    """`count` devices of one kind, indexed 0..count-1."""

    kind: DeviceKind
    """"gpu" (CUDA devices) or "cpu" (CPU slots, one core each)."""
    count: int
    """Number of devices the plan may use."""
    source: str
    """Where the facts came from, for `vla-rl plan` (e.g. "local: 2 CPU cores")."""
    slots_per_core: int = 1
    """CPU slots per host core (slot d runs on core d // slots_per_core)."""

    def name(self, index: int) -> str:
        return f"{'gpu' if self.kind == 'gpu' else 'cpu'}{index}"


def local_cores() -> list[int]:
    """The CPU cores this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return sorted(os.sched_getaffinity(0))
    return list(range(os.cpu_count() or 1))


def _narrow(kind: DeviceKind, found: int, cfg: PlacementConfig, source: str, slots: int = 1) -> Cluster:
    if cfg.num_devices is None:
        return Cluster(kind, found, source, slots)
    if cfg.num_devices > found:
        noun = "GPUs" if kind == "gpu" else "CPU slots"
        raise ConfigError(f"placement.num_devices={cfg.num_devices} but {source} has only {found} {noun}; "
                          f"set placement.num_devices <= {found} (or null to use all)", key="placement.num_devices")
    return Cluster(kind, cfg.num_devices, f"{source}, {cfg.num_devices} used", slots)


def detect_cluster(cfg: PlacementConfig, ray_resources: dict[str, float] | None = None) -> Cluster:
    """The devices of this machine (local) or of the connected Ray cluster (`ray_resources`)."""
    if ray_resources is not None:
        gpus, cpus = int(ray_resources.get("GPU", 0)), int(ray_resources.get("CPU", 0))
        if cfg.device == "cuda" and gpus == 0:
            raise ConfigError("placement.device=cuda but the Ray cluster has no GPU; use placement.device=cpu or auto")
        if gpus and cfg.device != "cpu":
            return _narrow("gpu", gpus, cfg, f"ray: {gpus} GPUs")
        return _narrow("cpu", cpus, cfg, f"ray: {cpus} CPUs")
    import torch

    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if cfg.device == "cuda" and gpus == 0:
        raise ConfigError("placement.device=cuda but no CUDA device is visible; use placement.device=cpu or auto")
    if gpus and cfg.device != "cpu":
        return _narrow("gpu", gpus, cfg, f"local: {gpus} CUDA GPUs")
    cores, slots = len(local_cores()), cfg.cpu_slots_per_core
    where = f"local: {cores} CPU cores" + (f" x {slots} slots" if slots > 1 else "")
    return _narrow("cpu", cores * slots, cfg, where, slots)


def tensor_device(cluster: Cluster, devices: Sequence[int], cfg: PlacementConfig, visible_remapped: bool = False):
    """The torch device of a component's tensors: its first GPU, or the CPU.

    With `visible_remapped` (Ray sets CUDA_VISIBLE_DEVICES per actor) the first visible GPU is cuda:0.
    On a cluster of GPUs that torch cannot use here (Ray's fake GPUs in tests) tensors stay on CPU
    unless placement.device=cuda asked for CUDA explicitly.
    """
    import torch

    if cluster.kind == "gpu" and cfg.device != "cpu" and torch.cuda.is_available():
        return torch.device("cuda", 0 if visible_remapped else devices[0])
    if cfg.device == "cuda":
        raise ConfigError("placement.device=cuda but torch sees no CUDA device in this process; use auto or cpu")
    return torch.device("cpu")


def cores_of(cluster: Cluster, devices: Sequence[int]) -> list[int] | None:
    """The host cores behind CPU-slot devices (None on a GPU cluster: nothing to pin)."""
    if cluster.kind != "cpu":
        return None
    cores = local_cores()
    return sorted({cores[(d // cluster.slots_per_core) % len(cores)] for d in devices})


@contextmanager
def pinned(cores: Sequence[int] | None, threads: int = 0) -> Iterator[None]:
    """Run this process on `cores` (and torch on `threads` threads, 0 = one per core) inside the block."""
    if not cores or not hasattr(os, "sched_setaffinity"):
        yield
        return
    before_cores = os.sched_getaffinity(0)
    set_process_cores(os.getpid(), cores)
    try:
        with torch_threads(threads or len(cores)):
            yield
    finally:
        set_process_cores(os.getpid(), sorted(before_cores))


__all__ = ["Cluster", "cores_of", "detect_cluster", "local_cores", "pinned", "tensor_device"]
