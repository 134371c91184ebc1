"""The few collectives a data-parallel run needs, and their one-process identity.

`Collective` is what the runner's parts call when a number must be the same on every rank: sums for
advantage statistics, the agreement to stop a rollout or the training, gathering small Python
objects (episode statistics, evaluation results), a share of a list of items. With one process every
call is the identity, so single-process code paths stay exactly as they were; `ProcessGroup` does
the same over the default `torch.distributed` group (gloo on CPU, NCCL on GPUs; every rank must make
the same calls in the same order). `Workers.comm` (placement/workers.py) is the one the run uses.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
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

    # --- built on the above (the identity with one process)
    def total(self, value: float) -> float:
        """A number summed over ranks."""
        return value

    def shard(self, items: Sequence[Any]) -> list[Any]:
        """This rank's share of `items`: contiguous, near-equal blocks in rank order."""
        return list(items)

    def merged(self, part: Any) -> Any:
        """Every rank's `part` joined by `type(part).merge(parts)` (episode statistics, evaluation results)."""
        return part

    def mean_metrics(self, metrics: dict[str, float]) -> dict[str, float]:
        """Each metric averaged over the ranks that report it; `.../min` and `.../max` over all ranks."""
        return metrics

    def from_main(self, value: Any) -> Any:
        """Rank 0's `value` on every rank (every rank waits for it)."""
        return value


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

    def total(self, value: float) -> float:
        return float(self.sum(torch.tensor([float(value)], dtype=torch.float64)))

    def shard(self, items: Sequence[Any]) -> list[Any]:
        return list(np.array_split(np.asarray(list(items), dtype=object), self.world)[self.rank])

    def merged(self, part: Any) -> Any:
        return type(part).merge(self.gather(part))

    def mean_metrics(self, metrics: dict[str, float]) -> dict[str, float]:
        from vla_rl.algorithms import mean_metrics

        parts = self.gather(metrics)
        merged = mean_metrics(parts)
        for key in merged:
            pick = min if key.endswith("/min") else max if key.endswith("/max") else None
            if pick is not None:
                merged[key] = pick(p[key] for p in parts if key in p)
        return merged

    def from_main(self, value: Any) -> Any:
        return self.gather(value)[0]


__all__ = ["Collective", "ProcessGroup"]
