"""The OFT-style policy ("openvla_oft"): a K x A action chunk in one forward pass.

Because the action slots are inputs that do not depend on the chosen actions, `act` and `evaluate`
run the very same forward pass; the chunk's log-prob is the sum of its K*A per-dim log-probs. The
slot states are read out by the action head (`model.action_head`, readouts.py): the LM head's 256
action tokens, or OFT's continuous L1-regression head with a learned sampling scale.

forward_inputs (batch-first): "input_ids" (N, L), "attention_mask" (N, L), "images" (N, C, 3, S, S)
uint8 (C cameras: main, then wrist), "proprio" (N, P) float32 when proprio is used (normalised as the
checkpoint's statistics say), and the chosen actions: "action_tokens" (N, K, A) int64 vocabulary ids,
or "actions" (N, K, A) float32 normalised actions with the L1 head.

Published folders keep the L1 head and the proprio projector beside the weights as
`action_head--*checkpoint.pt` / `proprio_projector--*checkpoint.pt`; our saves write them the same way.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from transformers import Dinov2WithRegistersConfig, LlamaConfig, SiglipVisionConfig

from vla_rl.config.core import ConfigError
from vla_rl.config.model import ModelConfig
from vla_rl.models.base import ActOutput, EvaluateOutput, Obs, host_proprio
from vla_rl.models.images import stack_cameras
from vla_rl.models.openvla.policy import OpenVLAPolicy
from vla_rl.models.openvla.published import ACTION_HEAD, PROPRIO_PROJECTOR, PublishedLayout, load_component, save_component
from vla_rl.models.openvla_oft.checkpoint import DEFAULT_SCALE, head_meta, normalise_proprio, published_meta, saved_meta
from vla_rl.models.openvla_oft.network import OFTNetwork
from vla_rl.models.openvla_oft.readouts import OFT_ACTION_HEADS
from vla_rl.models.registry import POLICY_FAMILIES, EnvFacts
from vla_rl.models.tokenizer import trim_padding

_COMPONENTS = {PROPRIO_PROJECTOR: "proprio_file", ACTION_HEAD: "action_head_file"}
"""Module prefix -> the layout attribute naming its .pt file."""


@POLICY_FAMILIES.register("openvla_oft")
class OpenVLAOFTPolicy(OpenVLAPolicy):
    """OpenVLA parts, parallel decoding of an action chunk, optional wrist image and proprio token."""

    family = "openvla_oft"

    def __init__(self, net: OFTNetwork, tokenizer: Any, codec: Any, norm_stats: dict[str, Any], meta: dict[str, Any]) -> None:
        super().__init__(net, tokenizer, codec, norm_stats, meta)
        self.action_chunk = int(meta["action_chunk"])
        self.cameras = tuple(meta["cameras"])
        self.readout = OFT_ACTION_HEADS.get(meta.get("action_head", "tokens"))(
            net, self.action_chunk, self.action_dim, meta.get("action_distribution"))
        self.action_key, self.discrete_actions = self.readout.key, self.readout.discrete
        if net.action_head is not None and net.action_head.action_dim != self.action_dim:
            raise ConfigError(f"the L1 head predicts {net.action_head.action_dim} action dims but the statistics have "
                              f"{self.action_dim}; use the dataset_statistics.json the head was trained with")

    @property
    def reads_proprio(self) -> bool:
        return int(self.meta["proprio_dim"]) > 0

    def build_settings(self) -> dict[str, Any]:
        return {**super().build_settings(), "action_chunk": self.action_chunk, "use_proprio": self.reads_proprio,
                "use_wrist": "wrist" in self.cameras, "bidirectional_prompt": bool(self.meta["bidirectional_prompt"]),
                "action_head": self.meta.get("action_head", "tokens")}

    # ------------------------------------------------------------------ construction and loading
    @classmethod
    def _extra_meta(cls, cfg: ModelConfig, env: EnvFacts) -> dict[str, Any]:
        cameras = ("main", "wrist") if cfg.use_wrist else ("main",)
        missing = [c for c in cameras if c not in env.cameras]
        if missing:
            raise ValueError(f"model.use_wrist needs cameras {cameras}; the environment has {env.cameras}")
        meta = {"action_chunk": cfg.action_chunk, "cameras": list(cameras),
                "proprio_dim": env.proprio_dim if cfg.use_proprio else 0,
                "bidirectional_prompt": cfg.bidirectional_prompt, "proprio_normalization": "none",
                **head_meta(cfg.action_head or "tokens", cfg)}
        if meta["action_head"] == "l1_regression":
            meta["l1_head"] = {"action_dim": env.action_dim, "hidden_dim": None, "num_blocks": 2}  # hidden: the LLM's
            meta["action_scale_init"] = cfg.action_scale or DEFAULT_SCALE
        return meta

    @classmethod
    def _network(cls, dino: Dinov2WithRegistersConfig, siglip: SiglipVisionConfig, text: LlamaConfig,
                 first_action_id: int, meta: dict[str, Any]) -> OFTNetwork:
        l1 = meta.get("l1_head")
        if l1 is not None:
            l1 = {**l1, "hidden_dim": l1["hidden_dim"] or text.hidden_size}
            meta["l1_head"] = dict(l1)
            l1.update(scale=meta.pop("action_scale_init", DEFAULT_SCALE), learn_scale=meta["learn_action_scale"])
        return OFTNetwork(dino, siglip, text, first_action_id, meta["value_hidden"], int(meta["proprio_dim"]),
                          text.eos_token_id if text.eos_token_id is not None else 2, bool(meta["bidirectional_prompt"]), l1)

    @classmethod
    def _checkpoint_meta(cls, meta: dict[str, Any], path: str, layout: PublishedLayout, cfg: ModelConfig | None,
                         llm_dim: int) -> dict[str, Any]:
        if layout.name == "vla-rl":
            return saved_meta(meta, cfg)
        meta = published_meta(meta, path, layout, cfg, llm_dim)
        meta["action_scale_init"] = (cfg.action_scale if cfg is not None else None) or DEFAULT_SCALE
        return meta

    @classmethod
    def _component_state(cls, path: str, layout: PublishedLayout, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The proprio projector and the L1 head from their .pt files (a save of ours before this layout kept the
        projector in model.safetensors: then it is already in `state`)."""
        out: dict[str, torch.Tensor] = {}
        for prefix, attr in _COMPONENTS.items():
            file = getattr(layout, attr)
            if file is not None and not any(k.startswith(prefix + ".") for k in state):
                out.update({f"{prefix}.{k}": v for k, v in load_component(file).items()})
        return out

    @classmethod
    def _fresh_prefixes(cls, section: dict[str, Any]) -> tuple[str, ...]:
        return super()._fresh_prefixes(section) + ("action_scale.",)  # published L1 heads have no sampling scale

    def _after_load(self, cfg: ModelConfig | None) -> None:
        if self.reads_proprio:  # refuse missing proprio statistics at load, not at the first step
            self._normalise_proprio(np.zeros((1, int(self.meta["proprio_dim"])), dtype=np.float32))
        scale = self.net.action_scale
        if scale is None or cfg is None:
            return
        with torch.no_grad():
            if cfg.action_scale is not None:
                scale.log_scale.fill_(math.log(cfg.action_scale))
        scale.log_scale.requires_grad_(bool(self.meta["learn_action_scale"]))

    def _save_components(self, path: str, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        for prefix in _COMPONENTS:
            part = {k[len(prefix) + 1:]: v for k, v in state.items() if k.startswith(prefix + ".")}
            if part:
                save_component(path, prefix, part)
        return {k: v for k, v in state.items() if k.split(".")[0] not in _COMPONENTS}

    # ------------------------------------------------------------------ rollout and training
    def prepare(self, obs: Obs) -> dict[str, torch.Tensor]:
        images = stack_cameras(obs["images"], self.cameras, self.image_size, self.device, self.resize)
        input_ids, attention_mask = self.prompts(list(obs["instruction"]), self.device)
        inputs = {"input_ids": input_ids, "attention_mask": attention_mask, "images": images}
        if self.net.proprio_projector is not None:
            inputs["proprio"] = torch.as_tensor(self._normalise_proprio(host_proprio(obs)), device=self.device)
        return inputs

    def _normalise_proprio(self, proprio: np.ndarray) -> np.ndarray:
        """OFT's q01/q99 normalisation from the chosen dataset's "proprio" statistics, or raw for a policy we built
        (trained on raw proprio: meta proprio_normalization "none")."""
        if self.meta.get("proprio_normalization", "none") == "none":
            return proprio.astype(np.float32)
        key = self.codec.extras.get("unnorm_key")
        stats = self.norm_stats.get(key, {}).get("proprio")
        if stats is None or "q01" not in stats or "q99" not in stats:
            raise ConfigError(f"this policy normalises proprio with its dataset's statistics, but "
                              f"{self.norm_stats_source} has no {key!r} proprio q01/q99; use the dataset_statistics.json "
                              f"the checkpoint was trained with (keys: {sorted(self.norm_stats)})", key="model.unnorm_key")
        return normalise_proprio(proprio, stats).astype(np.float32)

    def action_targets(self, env_actions: np.ndarray) -> torch.Tensor:
        return self.readout.targets(env_actions, self.codec)

    def _slots(self, inputs: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The action-slot hidden states (N, K*A, H) and the values (N,) | None."""
        dev = self.device
        ids, mask = trim_padding(inputs["input_ids"].to(dev), inputs["attention_mask"].to(dev))
        proprio = inputs.get("proprio")
        embeds, full_mask = self.net.prefix_multi(ids, mask, inputs["images"].to(dev),
                                                  None if proprio is None else proprio.to(dev))
        slots, h_prompt = self.net.chunk_hidden(embeds, full_mask, self.action_chunk * self.action_dim)
        return slots, self.net.value(h_prompt)

    @torch.no_grad()
    def act(self, obs: Obs, mode: str = "sample", temperature: float = 1.0) -> ActOutput:
        inputs = self.prepare(obs)
        slots, values = self._slots(inputs)
        stored, logp = self.readout.choose(slots, mode, temperature)
        inputs[self.action_key] = stored
        return ActOutput(actions=self.readout.to_env(stored, self.codec), forward_inputs=inputs, logprobs=logp,
                         values=values)

    @torch.no_grad()
    def value(self, obs: Obs) -> torch.Tensor | None:
        # The prompt's last state comes from the pass over prompt + action slots (a bidirectional prompt sees them).
        return self._slots(self.prepare(obs))[1]

    def evaluate(self, forward_inputs: dict[str, torch.Tensor], temperature: float = 1.0) -> EvaluateOutput:
        needed = ["input_ids", "attention_mask", "images", self.action_key] + (["proprio"] if self.net.proprio_projector else [])
        missing = [k for k in needed if k not in forward_inputs]
        if missing:
            raise KeyError(f"forward_inputs lacks {missing}; pass the dict ActOutput.forward_inputs returned by act()")
        slots, values = self._slots(forward_inputs)
        logp, entropy = self.readout.score(slots, forward_inputs[self.action_key], temperature)
        return EvaluateOutput(logprobs=logp, entropy=entropy, values=values)


__all__ = ["OpenVLAOFTPolicy"]
