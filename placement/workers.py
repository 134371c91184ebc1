"""What a backend hands the runner: the env, the actor's policy and engine, what acts in rollouts,
and how this process runs during each phase. The runner never asks where anything runs.

The runner calls `sync_weights()`, `phase(name)`, `state_dict()` / `load_state_dict()` (worker-side
state for exact resume) and `close()`, and reads `env`, `policy`, `rollout`, `engine`, `stages`.
"""

from __future__ import annotations

from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterator

import torch

from placement.cluster import pinned
from placement.plan import Plan


@dataclass
class Workers:
    """The running components of one plan, as the runner uses them."""

    env: Any
    """The vectorised training environment (`simulators.base.VectorEnv`)."""
    policy: torch.nn.Module
    """The actor's policy: trained by `engine`, saved in checkpoints, used for evaluation."""
    engine: Any
    """The training engine stepping `policy`'s parameters."""
    device: torch.device
    """Where `policy`'s tensors live."""
    plan: Plan
    """The plan these workers carry out."""
    rollout: Any = None
    """What acts during rollouts (`act(obs, mode, temperature)`); `policy` itself unless disaggregated."""
    weight_sync: Any = None
    """Sends the actor's weights to a separate rollout (`placement.weight_sync.WeightSender`), or None."""
    rollout_cores: list[int] | None = None
    """CPU cores this process runs on while it rolls out (None: no pinning)."""
    actor_cores: list[int] | None = None
    """CPU cores this process runs on while it trains (None: no pinning)."""
    torch_threads: int = 0
    """torch threads when pinned (0: one per pinned core)."""
    weights_version: int = 0
    """Version of the weights the rollout side acts with (bumped by every sync)."""
    closers: list[Any] = field(default_factory=list)
    """Extra things to close (rollout processes)."""

    def __post_init__(self) -> None:
        if self.rollout is None:
            self.rollout = self.policy

    @property
    def stages(self) -> list[list[int]] | None:
        """Env indices of each pipeline stage, or None for a sequential rollout."""
        return self.plan.stage_env_ids() if self.plan.pipelined else None

    def sync_weights(self) -> int:
        """Make the rollout act with the actor's current weights; returns the new version."""
        if self.weight_sync is None:
            self.weights_version += 1
        else:
            self.weights_version = self.weight_sync.push(self.rollout)
        return self.weights_version

    def state_dict(self) -> dict[str, Any]:
        """Worker-side state a checkpoint needs for exact resume: the separate rollout's sampling RNG."""
        if self.rollout is self.policy or not hasattr(self.rollout, "rng_states"):
            return {}
        return {"rollout_rng": self.rollout.rng_states()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if "rollout_rng" in state and hasattr(self.rollout, "set_rng_states"):
            self.rollout.set_rng_states(state["rollout_rng"])

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Where this process runs during phase `name` ("rollout" or "train"): pinning and offloading."""
        with ExitStack() as stack:
            if name == "rollout":
                if self.plan.offload:
                    self.engine.offload()
                stack.enter_context(pinned(self.rollout_cores, self.torch_threads))
            elif name == "train":
                if self.plan.offload:
                    self.engine.onload()
                stack.enter_context(pinned(self.actor_cores, self.torch_threads))
            yield

    def close(self) -> None:
        self.env.close()
        for closer in self.closers:
            closer.close()


__all__ = ["Workers"]
