"""The `placement` section of a config: which devices each component (env, rollout, actor) uses.

The mode follows from the device sets (see `placement/plan.py` and docs/placement.md):
    collocated     env, rollout and actor on the same devices, phase by phase;
    hybrid         env and rollout on disjoint devices, envs pipelined in `pipeline_stages` stages,
                   the actor on devices that include the rollout's;
    disaggregated  env, rollout and actor on pairwise disjoint devices.

Device-set grammar (`env`, `rollout`, `actor`): "all", or comma-separated indices and inclusive
ranges, e.g. "0", "0-3", "0,2", "0-1,4". Indices count GPUs, or CPU slots (cores) on a machine
without one. Checks that need the cluster's size (an index past the last device) or other sections
(stages dividing env.num_envs) happen when the plan is made (`placement.plan.make_plan`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from vla_rl.config.core import ConfigError, check

ALL = "all"


def parse_device_set(text: str | int, key: str = "placement") -> tuple[int, ...] | None:
    """"all" -> None (every device); "0-1,4" -> (0, 1, 4). Raises ConfigError naming `key` on bad syntax."""
    text = str(text).strip()  # YAML reads a bare 0 as an int
    if text == ALL:
        return None
    devices: list[int] = []
    example = 'e.g. "0", "0-3", "0,2" or "all"'
    if not text:
        raise ConfigError(f"{key} is empty; name devices, {example}")
    for part in text.split(","):
        lo, sep, hi = part.strip().partition("-")
        try:
            first, last = int(lo), int(hi) if sep else int(lo)
        except ValueError:
            raise ConfigError(f"{key}={text!r}: {part.strip()!r} is not an index or range; {example}") from None
        if first < 0 or last < first:
            raise ConfigError(f"{key}={text!r}: range {part.strip()!r} must be low-high with 0 <= low <= high")
        devices.extend(range(first, last + 1))
    if len(set(devices)) != len(devices):
        raise ConfigError(f"{key}={text!r} names a device twice; list each device once")
    return tuple(sorted(devices))


@dataclass
class PlacementConfig:
    """Where each component runs; the mode (collocated, hybrid, disaggregated) follows from the device sets."""

    # --- the cluster
    backend: Literal["local", "ray"] = "local"
    """Execution backend: "local" (processes on this machine, no cluster) or "ray" (placement groups)."""
    device: Literal["auto", "cpu", "cuda"] = "auto"
    """Kind of device to plan over and to put tensors on: "auto" takes CUDA GPUs when present, else CPU slots."""
    num_devices: int | None = None
    """Devices in the cluster (GPUs or CPU slots); null = all detected. May not exceed what the backend has."""
    cpu_slots_per_core: int = 1
    """CPU slots per core on a machine without GPUs (2+ oversubscribes, e.g. to rehearse disaggregated on 2 cores)."""

    # --- components
    mode: Literal["auto", "collocated", "hybrid", "disaggregated"] = "auto"
    """"auto": the mode follows from the device sets; a named mode is checked against them."""
    env: str | int = ALL
    """Devices of the env workers (simulators): "all" or indices/ranges such as "0-1"."""
    rollout: str | int = ALL
    """Devices of the rollout (the policy copy that acts): "all" or indices/ranges."""
    actor: str | int = ALL
    """Devices of the actor (the policy being trained): "all" or indices/ranges."""
    env_workers_per_device: int = 1
    """Env worker processes per env device (ignored when env.num_workers is set)."""
    pipeline_stages: int = 1
    """Stages k the envs are split into so stage i is simulated while stage i-1 is inferred (1: no pipeline)."""

    # --- behaviour
    pin_cpus: bool = False
    """On CPU slots, pin each component's processes to its slots (off: slower on a shared 2-core machine, see docs)."""
    offload: bool = True
    """Collocated/hybrid on GPUs: move the actor's optimizer state to host memory during the rollout."""
    engine: Literal["single", "fsdp2", "deepspeed"] = "single"
    """Training engine of the actor: one process ("single"), or data-parallel ranks launched with torchrun that
    shard it with FSDP2 ("fsdp2") or DeepSpeed ZeRO ("deepspeed"); see vla_rl.engines and docs/placement.md."""
    zero_stage: int | None = None
    """engine=deepspeed: ZeRO stage 1 (optimizer state partitioned over ranks), 2 (+ gradients) or 3 (+ parameters);
    null = 2. Refused with any other engine."""
    torch_threads: int = 0
    """torch intra-op threads in the main process (0: leave torch's default, or the pinned slot count)."""
    train_threads: int = 0
    """torch intra-op threads while the actor trains and during SFT (0: as in the rest of the run). Local
    placements on a CPU: the simulator workers idle then, so a transformer's update can use every core (two threads
    took the `micro` OFT policy's train step from 0.34 to 0.22 s on two cores; the tiny CNN's got slower)."""
    ray_address: str | None = None
    """Ray cluster to join ("auto", "ray://host:port"); null starts a local Ray instance (backend=ray only)."""

    def __post_init__(self) -> None:
        for name in ("env", "rollout", "actor"):
            parse_device_set(getattr(self, name), f"placement.{name}")
        check(self.num_devices is None or self.num_devices >= 1,
              f"placement.num_devices={self.num_devices} must be null (detect) or >= 1")
        check(self.cpu_slots_per_core >= 1, f"placement.cpu_slots_per_core={self.cpu_slots_per_core} must be >= 1")
        check(self.env_workers_per_device >= 1,
              f"placement.env_workers_per_device={self.env_workers_per_device} must be >= 1")
        check(self.pipeline_stages >= 1,
              f"placement.pipeline_stages={self.pipeline_stages} must be >= 1 (1 runs phases without a pipeline)")
        check(self.zero_stage is None or self.engine == "deepspeed",
              f"placement.zero_stage={self.zero_stage} only applies to placement.engine=deepspeed; remove it or set "
              "placement.engine=deepspeed")
        check(self.zero_stage in (None, 1, 2, 3),
              f"placement.zero_stage={self.zero_stage} is not a ZeRO stage; use 1 (optimizer state partitioned), "
              "2 (+ gradients), 3 (+ parameters) or null (2)")
        check(self.torch_threads >= 0, f"placement.torch_threads={self.torch_threads} must be >= 0")
        check(self.train_threads >= 0, f"placement.train_threads={self.train_threads} must be >= 0 (0: as the run)")
        check(self.ray_address is None or self.backend == "ray",
              f"placement.ray_address={self.ray_address!r} only applies to placement.backend=ray; remove it or set "
              "placement.backend=ray")

    @property
    def device_sets(self) -> dict[str, tuple[int, ...] | None]:
        """Component -> device indices (None for "all")."""
        return {name: parse_device_set(getattr(self, name), f"placement.{name}") for name in ("env", "rollout", "actor")}


__all__ = ["ALL", "PlacementConfig", "parse_device_set"]
