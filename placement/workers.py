"""What a backend hands the runner: the env, the actor's policy and engine, what acts in rollouts,
how this process runs during each phase, and the collectives of its run. The runner never asks
where anything runs.

The runner calls `sync_weights()` (the one weight sync of every mode), `phase(name)`,
`state_dict(generator)` / `load_state_dict(extra, generator)` (worker-side checkpoint state for
exact resume), `open_log(dir)` and `close()`, and reads `env`, `policy`, `rollout`, `engine`,
`stages`, `comm` and `is_main`. A data-parallel rank's workers (`placement/data_parallel.py`) are the
same interface over its share of the run.
"""

from __future__ import annotations

from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterator

import torch

from placement.cluster import pinned
from placement.collective import Collective
from placement.plan import Plan
from vla_rl.metrics_log import MetricsLog, NullLog
from vla_rl.threads import torch_threads


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
    train_threads: int = 0
    """torch threads in the train phase (0: as in the rollout; `placement.train_threads`)."""
    weights_version: int = 0
    """Version of the weights the rollout side acts with (bumped by every sync)."""
    closers: list[Any] = field(default_factory=list)
    """Extra things to close (rollout processes)."""
    comm: Collective = field(default_factory=Collective)
    """The collectives of the run (the identity in one process; placement/collective.py)."""
    stale: bool = field(default=True, init=False)
    """Whether the actor trained since the last `sync_weights()` (true before the first)."""

    def __post_init__(self) -> None:
        if self.rollout is None:
            self.rollout = self.policy

    @property
    def is_main(self) -> bool:
        """Whether this process writes the run's files (logs, checkpoints, evaluation records)."""
        return self.comm.is_main

    @property
    def stages(self) -> list[list[int]] | None:
        """Env indices of each pipeline stage, or None for a sequential rollout."""
        return self.plan.stage_env_ids() if self.plan.pipelined else None

    def sync_weights(self) -> int:
        """Make the rollout (and whatever evaluates and saves) act with the actor's current weights; a no-op
        when the actor has not trained since the last sync. Returns the weights' version."""
        if self.stale:
            self._push_weights()
            self.stale = False
        return self.weights_version

    def _push_weights(self) -> None:
        if self.weight_sync is None:
            self.weights_version += 1
        else:
            self.weights_version = self.weight_sync.push(self.rollout)

    def state_dict(self, generator: torch.Generator) -> dict[str, Any]:
        """Worker-side state a checkpoint needs for exact resume, as entries of its `extra`: the separate
        rollout's sampling RNG (`generator`, the learner's minibatch RNG, is checkpointed by the runner)."""
        if self.rollout is self.policy:
            return {"workers": {}}
        return {"workers": {"rollout_rng": self.rollout.rng_states()}}

    def load_state_dict(self, extra: dict[str, Any], generator: torch.Generator) -> None:
        """Restore what `state_dict` wrote (after the runner loaded the policy's weights)."""
        state = extra.get("workers", {})
        if "rollout_rng" in state:
            self.rollout.set_rng_states(state["rollout_rng"])

    def open_log(self, log_dir) -> MetricsLog | NullLog:
        """The run's metrics log (the main process writes it)."""
        return MetricsLog(log_dir) if self.is_main else NullLog()

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
                stack.enter_context(torch_threads(self.train_threads))
            yield
        if name == "train":
            self.stale = True

    def close(self) -> None:
        self.env.close()
        for closer in self.closers:
            closer.close()


__all__ = ["Workers"]
