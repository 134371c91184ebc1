"""Weight sync from the actor to rollout workers: send only what can have changed, versioned and checked.

The first payload carries every tensor of the actor's state; later ones carry the trainable
parameters (with LoRA on: the adapters and the value head, since everything else is frozen) plus
any buffer whose value changed since the last send. Each payload has a version (1, 2, ...) that the
receiver checks is exactly the next one, and a checksum of its tensors that the receiver verifies
before loading. `state_checksum` lets a test compare actor and rollout weights end to end.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Iterable

import torch
from torch import nn


class WeightSyncError(RuntimeError):
    """A payload the rollout side refuses: out of order, corrupted, or not matching its policy."""


@dataclass
class WeightPayload:
    """One sync: tensors by state-dict name (on the CPU), the version they make, and their checksum."""

    version: int
    tensors: dict[str, torch.Tensor]
    full: bool
    """True when `tensors` is the whole state (the first sync)."""
    checksum: str

    @property
    def num_bytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in self.tensors.values())


def tensors_checksum(tensors: dict[str, torch.Tensor], names: Iterable[str] | None = None) -> str:
    """A blake2b digest over names, dtypes, shapes and bytes of `tensors` (sorted by name)."""
    digest = hashlib.blake2b(digest_size=16)
    for name in sorted(names if names is not None else tensors):
        t = tensors[name].detach().to("cpu").contiguous()
        digest.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return digest.hexdigest()


def state_checksum(module: nn.Module, names: Iterable[str] | None = None) -> str:
    """Checksum of a module's state (or of the named entries), comparable across processes."""
    return tensors_checksum(module.state_dict(), names)


class WeightSender:
    """The actor side: builds payloads from `policy` and pushes them to a rollout."""

    def __init__(self, policy: nn.Module) -> None:
        self.policy = policy
        self.version = 0
        self._buffers: dict[str, torch.Tensor] = {}

    def trainable_names(self) -> list[str]:
        """State-dict names of parameters the optimizer changes."""
        return [name for name, p in self.policy.named_parameters() if p.requires_grad]

    def payload(self) -> WeightPayload:
        """The next payload (bumps the version)."""
        state = self.policy.state_dict()
        full = self.version == 0
        buffers = {name for name, _ in self.policy.named_buffers() if name in state}
        if full:
            names = list(state)
        else:
            changed = [n for n in buffers if n not in self._buffers or not torch.equal(self._buffers[n], state[n])]
            names = self.trainable_names() + changed
        tensors = {name: state[name].detach().to("cpu", copy=True) for name in names}
        self._buffers.update({n: state[n].detach().clone() for n in buffers if n in tensors})
        self.version += 1
        return WeightPayload(self.version, tensors, full, tensors_checksum(tensors))

    def push(self, rollout) -> int:
        """Send the next payload to `rollout` (anything with `load_weights(payload) -> version`)."""
        payload = self.payload()
        acked = rollout.load_weights(payload)
        if acked != payload.version:
            raise WeightSyncError(f"rollout acknowledged weights version {acked}, expected {payload.version}")
        return acked


class WeightReceiver:
    """The rollout side: checks order and checksum, then copies the tensors into `policy`."""

    def __init__(self, policy: nn.Module) -> None:
        self.policy = policy
        self.version = 0

    @torch.no_grad()
    def apply(self, payload: WeightPayload) -> int:
        if payload.version != self.version + 1:
            raise WeightSyncError(f"rollout holds weights version {self.version} and got version {payload.version}; "
                                  "payloads must arrive in order, each exactly once")
        if self.version == 0 and not payload.full:
            raise WeightSyncError("the first weights a rollout receives must be the full state (WeightSender sends it)")
        if tensors_checksum(payload.tensors) != payload.checksum:
            raise WeightSyncError(f"weights version {payload.version} failed its checksum; the transfer corrupted it")
        state = self.policy.state_dict(keep_vars=True)
        unknown = [n for n in payload.tensors if n not in state]
        if unknown:
            raise WeightSyncError(f"weights {unknown[:5]} do not exist in the rollout policy; actor and rollout "
                                  "must be built from the same model config")
        for name, value in payload.tensors.items():
            target = state[name]
            if target.shape != value.shape:
                raise WeightSyncError(f"{name}: rollout shape {tuple(target.shape)} != actor shape {tuple(value.shape)}")
            target.data.copy_(value)
        self.version = payload.version
        return self.version


__all__ = ["WeightPayload", "WeightReceiver", "WeightSender", "WeightSyncError", "state_checksum", "tensors_checksum"]
