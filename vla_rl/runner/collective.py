"""The few collectives a data-parallel run needs, and their one-process identity.

`Collective` is what the runner's parts call when a number must be the same on every rank: sums for
advantage statistics, the agreement to stop a rollout or the training, gathering small Python
objects (episode statistics, evaluation results). With one process every call is the identity, so
single-process code paths stay exactly as they were; `ProcessGroup` does the same over the default
`torch.distributed` group (gloo on CPU, NCCL on GPUs; every rank must make the same calls in the same
order).
"""

from __future__ import annotations

from typing import Any

import torch


class Collective:
    """One process: every collective is the identity."""

    rank: int = 0
    world: int = 1

    @property
    def is_main(self) -> bool:
        """Whether this rank writes files (logs, checkpoints, evaluation records)."""
        return self.rank == 0

    def sum(self, tensor: torch.Tensor) -> torch.Tensor:
        """Element-wise sum over ranks (a new tensor)."""
        return tensor

    def any(self, flag: bool) -> bool:
        """True when `flag` is true on some rank."""
        return bool(flag)

    def all(self, flag: bool) -> bool:
        """True when `flag` is true on every rank."""
        return bool(flag)

    def gather(self, obj: Any) -> list[Any]:
        """Every rank's `obj`, in rank order (picklable objects)."""
        return [obj]

    def barrier(self) -> None:
        """Wait until every rank got here."""


class ProcessGroup(Collective):
    """The collectives over the default torch.distributed process group."""

    def __init__(self) -> None:
        import torch.distributed as dist

        if not dist.is_initialized():
            raise RuntimeError("ProcessGroup needs torch.distributed initialised (torchrun, or init_process_group)")
        self._dist = dist
        self.rank, self.world = dist.get_rank(), dist.get_world_size()
        self._device = torch.device("cuda", torch.cuda.current_device()) \
            if dist.get_backend() == "nccl" else torch.device("cpu")

    def sum(self, tensor: torch.Tensor) -> torch.Tensor:
        out = tensor.detach().to(self._device, copy=True)
        self._dist.all_reduce(out)
        return out.to(tensor.device)

    def any(self, flag: bool) -> bool:
        return bool(self.sum(torch.tensor([float(bool(flag))])) > 0)

    def all(self, flag: bool) -> bool:
        return bool(self.sum(torch.tensor([float(bool(flag))])) == self.world)

    def gather(self, obj: Any) -> list[Any]:
        out: list[Any] = [None] * self.world
        self._dist.all_gather_object(out, obj)
        return out

    def barrier(self) -> None:
        self._dist.barrier()


__all__ = ["Collective", "ProcessGroup"]
