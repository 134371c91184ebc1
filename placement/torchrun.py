"""The process group of a data-parallel run: joining torchrun's ranks in `vla-rl train`, and leaving them.

`start_ranks` joins the group for a distributed engine (or says which torchrun command to run),
`on_main_rank` runs one step on rank 0 only and hands its result to every rank (the warm start),
`stop_ranks` ends the group. `placement/data_parallel.py` builds each rank's workers inside it.
"""

from __future__ import annotations

import os
from typing import Any, Callable

import torch

from vla_rl.config.core import ConfigError
from vla_rl.engines.registry import DISTRIBUTED_ENGINES, torchrun_command


def start_ranks(config, args: list[str]) -> bool:
    """In `vla-rl train`: join torchrun's process group for a distributed engine (True when this call
    started it; `stop_ranks` ends it). A ConfigError with the command to run for launches that cannot work."""
    import torch.distributed as dist

    world = int(os.environ.get("WORLD_SIZE", "1"))
    engine = config.placement.engine
    if engine not in DISTRIBUTED_ENGINES:
        if world > 1:
            raise ConfigError(f"torchrun started {world} ranks, but placement.engine={engine} trains in one "
                              "process: add placement.engine=fsdp2 (or deepspeed), or run `vla-rl train` without "
                              "torchrun", key="placement.engine")
        return False
    if dist.is_initialized():
        return False
    if "RANK" not in os.environ or "MASTER_ADDR" not in os.environ:
        raise ConfigError(f"placement.engine={engine} trains data-parallel ranks that torchrun starts; run "
                          f"`{torchrun_command(engine, args, torch.cuda.device_count() or 2)}` "
                          "(docs/placement.md), or use placement.engine=single", key="placement.engine")
    gpu = torch.cuda.is_available() and config.placement.device != "cpu"
    if gpu:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group("nccl" if gpu else "gloo")
    return True


def on_main_rank(compute: Callable[[], Any], hours: float = 12.0) -> Any:
    """`compute()` on rank 0 only (e.g. the warm start: demos and SFT, which write files), its result sent
    to every rank; the others wait up to `hours` (a gloo group of its own, so the run's collectives keep
    their usual timeout). Without a process group, just `compute()`."""
    import datetime

    import torch.distributed as dist

    if not dist.is_initialized():
        return compute()
    group = dist.new_group(backend="gloo", timeout=datetime.timedelta(hours=hours))
    box: list[Any] = [None]
    try:
        if dist.get_rank() == 0:
            try:
                box[0] = ("ok", compute())
            except BaseException as exc:
                box[0] = ("failed", f"{type(exc).__name__}: {exc}")
                dist.broadcast_object_list(box, src=0, group=group)
                raise
        dist.broadcast_object_list(box, src=0, group=group)
    finally:
        dist.destroy_process_group(group)
    status, value = box[0]
    if status != "ok":
        raise RuntimeError(f"rank 0 failed before training ({value}); see its output")
    return value


def stop_ranks() -> None:
    """End the process group `start_ranks` started."""
    import torch.distributed as dist

    if dist.is_initialized():
        dist.destroy_process_group()


__all__ = ["on_main_rank", "start_ranks", "stop_ranks"]
