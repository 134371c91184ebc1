"""Local collocated placement: environments in worker processes on this machine, one policy in
this process that both acts (rollout) and trains (actor), phase by phase.

Because rollout and actor are the same object here, weight sync is a version bump; placements with
separate rollout workers send the changed weights instead.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from placement.registry import PLACEMENTS


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("placement.device=cuda but no CUDA device is visible; use placement.device=cpu or auto")
    return torch.device(name)


@dataclass
class LocalWorkers:
    env: object
    """The vectorised training environment (`simulators.base.VectorEnv`)."""
    policy: torch.nn.Module
    """The policy that acts in rollouts and is trained by `engine`."""
    engine: object
    """The training engine stepping `policy`'s parameters."""
    device: torch.device
    weights_version: int = 0
    """Version of the weights the rollout side acts with (bumped by every sync)."""

    def sync_weights(self) -> int:
        self.weights_version += 1
        return self.weights_version

    def close(self) -> None:
        self.env.close()


@PLACEMENTS.register("local/collocated")
def build_local_collocated(config) -> LocalWorkers:
    from simulators.registry import make_env
    from vla_rl.engines.single import SingleEngine
    from vla_rl.models.registry import build_policy

    if config.placement.torch_threads:
        torch.set_num_threads(config.placement.torch_threads)
    device = resolve_device(config.placement.device)
    env = make_env(config.env)
    try:
        spec = env.spec
        policy = build_policy(config.model, action_dim=spec.action_dim, cameras=spec.cameras,
                              proprio_dim=spec.proprio_dim, seed=config.runner.seed,
                              gripper_convention=spec.gripper_convention)
        policy.to(device)
        algo = config.algorithm
        engine = SingleEngine(policy, lr=algo.lr, value_lr=algo.value_lr, weight_decay=algo.weight_decay,
                              max_grad_norm=algo.max_grad_norm)
    except BaseException:
        env.close()
        raise
    return LocalWorkers(env=env, policy=policy, engine=engine, device=device)
