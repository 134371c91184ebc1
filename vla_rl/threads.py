"""torch's intra-op thread count for a block of code: what the placement's train phase and SFT run under."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator


@contextmanager
def torch_threads(threads: int) -> Iterator[None]:
    """Run torch on `threads` intra-op threads inside the block (0: leave them as they are)."""
    if not threads:
        yield
        return
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


__all__ = ["torch_threads"]
