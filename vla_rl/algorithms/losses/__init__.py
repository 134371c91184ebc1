"""Policy losses (registered in `POLICY_LOSSES`) and their parts: clipped objective, value, KL."""

from vla_rl.algorithms.losses.actor import ACTOR_INPUTS, actor_loss
from vla_rl.algorithms.losses.kl import kl_k1, kl_k2, kl_k3, kl_penalty
from vla_rl.algorithms.losses.output import LossOutput
from vla_rl.algorithms.losses.policy import clipped_policy_loss
from vla_rl.algorithms.losses.ppo import ppo_loss
from vla_rl.algorithms.losses.value import VALUE_INPUTS, value_loss

__all__ = [
    "ACTOR_INPUTS",
    "LossOutput",
    "VALUE_INPUTS",
    "actor_loss",
    "clipped_policy_loss",
    "kl_k1",
    "kl_k2",
    "kl_k3",
    "kl_penalty",
    "ppo_loss",
    "value_loss",
]
