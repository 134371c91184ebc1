"""The policy interface shared by rollout, training, evaluation and serving.

A policy turns a batch of observations (the `simulators.base` observation dict: uint8 images by
camera, float proprio, instruction strings) into environment actions, and can later recompute the
exact distribution it sampled from, with gradients, for the learner.

Shapes: N environments, K actions per chunk (1 for OpenVLA-style), A dims per action (7).
Log-probs and entropies are returned per token, (N, K, A); the algorithm layer aggregates them to
action (sum over A) or chunk (sum over K and A) granularity. Values are one per chunk, (N,).
A continuous family reports, per action element, the log-density of everything it sampled for that
element (a flow policy: summed over its denoising steps), so the chunk sum is the whole sample's.

Supervised training goes through two hooks with token defaults: `demo_targets` (demo actions ->
forward_inputs entries) and `supervised_loss` (the family's SFT objective on them).
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from vla_rl.models.action_codec import ActionCodec

Obs = dict[str, Any]


def host_proprio(obs: Obs) -> np.ndarray:
    """obs["proprio"] as a float32 numpy array, whether the backend gave numpy or torch tensors on its device
    (maniskill_gpu): a family that normalises proprio with numpy statistics copies these few floats to the host."""
    proprio = obs["proprio"]
    if isinstance(proprio, torch.Tensor):
        proprio = proprio.detach().cpu().numpy()
    return np.asarray(proprio, dtype=np.float32)


@dataclass
class ActOutput:
    """What `Policy.act` returns."""

    actions: np.ndarray
    """float32 (N, K, A) actions in the environment's action space, ready for `chunk_step`."""
    forward_inputs: dict[str, torch.Tensor]
    """Batch-first tensors that reproduce this call exactly in `evaluate` (model inputs plus the
    chosen actions under the key `Policy.action_key`, "action_tokens" for the token heads). Stored by the rollout buffer."""
    logprobs: torch.Tensor
    """float32 (N, K, A): log-probs of the sampled tokens under the distribution actually sampled
    (temperature applied; greedy mode reports the log-prob at temperature 1)."""
    values: torch.Tensor | None
    """float32 (N,) value estimates, or None for a policy without a value head."""
    chain: dict[str, torch.Tensor] | None = None
    """Families that sample in several stochastic steps (flow matching): per-step tensors of the chain
    (e.g. the noise drawn and each step's Gaussian mean and std), for inspection and tests; not stored."""


@dataclass
class EvaluateOutput:
    """What `Policy.evaluate` returns (with gradients)."""

    logprobs: torch.Tensor
    """(N, K, A) log-probs of `forward_inputs[policy.action_key]`."""
    entropy: torch.Tensor
    """(N, K, A) entropy of each token's distribution."""
    values: torch.Tensor | None
    """(N,) value estimates, or None."""


@dataclass
class SupervisedOutput:
    """What `Policy.supervised_loss` returns (with gradients)."""

    loss: torch.Tensor
    """Scalar: the family's imitation objective, averaged over the valid chunk entries."""
    values: torch.Tensor | None
    """(N,) value estimates of the same forward pass (for a value loss on demo returns), or None."""
    metrics: dict[str, float]
    """Named diagnostics (e.g. "nll", "entropy"; a flow family "flow_mse"), each a mean over valid entries."""


class Policy(nn.Module, abc.ABC):
    """Base class of every model family. Subclasses register in `vla_rl.models.registry`."""

    action_chunk: int
    action_dim: int
    cameras: tuple[str, ...] = ("main",)
    """Camera names the policy reads from `obs["images"]`, main first (families with a wrist input override it)."""
    codec: ActionCodec
    """Tokens <-> environment actions (statistics and gripper conventions)."""
    norm_stats: dict[str, Any]
    """OpenVLA-style statistics of every dataset the checkpoint knows ({} for none)."""
    action_key: str = "action_tokens"
    """The forward_inputs key holding the chosen actions: "action_tokens" (int64 ids) for the token heads,
    "actions" (float32, normalised) for a continuous head (openvla_oft with model.action_head=l1_regression)."""
    discrete_actions: bool = True
    """True when log-probs are of a 256-way categorical per action dim; False for a continuous density."""
    lora_config: Any = None
    """The `vla_rl.config.model.LoraConfig` of injected adapters, or None (see vla_rl.models.lora)."""

    @abc.abstractmethod
    def act(self, obs: Obs, mode: str = "sample", temperature: float = 1.0) -> ActOutput:
        """Choose actions for a batch of observations; `mode` is "sample" or "greedy". No grad."""

    @abc.abstractmethod
    def value(self, obs: Obs) -> torch.Tensor | None:
        """float32 (N,) value estimates of a batch of observations without choosing actions (what bootstraps a
        truncated episode), bit-equal to the `values` of `act` on them; None without a value head. No grad, and
        no random draws (the rollout's random stream is the same as with a greedy `act`)."""

    @abc.abstractmethod
    def evaluate(self, forward_inputs: dict[str, torch.Tensor], temperature: float = 1.0) -> EvaluateOutput:
        """Recompute log-probs, entropy and values of stored rollouts, with gradients."""

    @abc.abstractmethod
    def save_pretrained(self, path: str) -> None:
        """Write the policy in its Hugging Face layout (config, weights, tokenizer, norm stats)."""

    @classmethod
    @abc.abstractmethod
    def from_pretrained(cls, path: str, cfg: Any = None, unnorm_key: str | None = None) -> "Policy":
        """Load a policy saved by `save_pretrained` (or a published checkpoint of this family).

        `cfg` (a `vla_rl.config.model.ModelConfig`, optional) overrides what a run may change on load:
        dtype, the action-decoding fields, and a value head for a checkpoint that has none. `unnorm_key`
        (over cfg's) picks the dataset statistics, which a checkpoint with several datasets needs to load."""

    @property
    def reads_proprio(self) -> bool:
        """Whether `act` reads obs["proprio"] (a served policy then requires the state)."""
        return False

    def action_targets(self, env_actions: np.ndarray) -> torch.Tensor:
        """Environment actions (N, K, A), e.g. demonstrations, in the form `evaluate` scores under `action_key`."""
        return torch.as_tensor(self.codec.encode(env_actions), dtype=torch.long)

    def build_settings(self) -> dict[str, Any]:
        """The build-time `model` keys this policy was built with, which loading it keeps (`build_policy`
        refuses a config with `model.pretrained` that sets one of them to another value)."""
        return {}

    def demo_targets(self, actions: np.ndarray) -> dict[str, torch.Tensor]:
        """forward_inputs entries that make `supervised_loss` imitate demo action chunks (N, K, A) given in the
        environment's action space: by default `action_targets` under `action_key` (what `evaluate` scores); a
        family whose objective is not the log-prob of its samples (flow matching) stores its own targets."""
        return {self.action_key: self.action_targets(actions)}

    def supervised_loss(self, forward_inputs: dict[str, torch.Tensor], mask: torch.Tensor) -> SupervisedOutput:
        """The imitation objective on `demo_targets`, averaged over chunk entries where `mask` (N, K) is true
        (by default the mean negative log-prob of the demo actions per element, from `evaluate`)."""
        out = self.evaluate(forward_inputs)
        weights = mask.to(out.logprobs.device, out.logprobs.dtype)[..., None].expand_as(out.logprobs)
        count = weights.sum().clamp_min(1.0)
        nll = -(out.logprobs * weights).sum() / count
        entropy = (out.entropy.detach() * weights).sum() / count
        return SupervisedOutput(loss=nll, values=out.values, metrics={"nll": float(nll.detach()), "entropy": float(entropy)})

    def set_action_decoding(self, gripper_convention: str | None = None, unnorm_key: str | None = None) -> None:
        """Re-target the action codec: another environment's gripper convention and/or another dataset's
        statistics from `norm_stats` (None keeps the current choice)."""
        codec = self.codec
        key = unnorm_key if unnorm_key is not None else codec.extras.get("unnorm_key")
        self.codec = ActionCodec.from_norm_stats(
            codec.vocab_size, self.norm_stats, key,
            policy_gripper_range=codec.policy_gripper_range,
            policy_gripper_convention=codec.policy_gripper_convention,
            env_gripper_convention=gripper_convention or codec.env_gripper_convention,
            binarize_gripper=codec.binarize_gripper, n_bins=codec.n_bins,
        )
