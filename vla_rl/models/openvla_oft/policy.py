"""The OFT-style policy ("openvla_oft"): a K x A chunk of 256-bin action tokens in one forward pass.

Because the action slots are inputs that do not depend on the sampled tokens, `act` and `evaluate`
run the very same forward pass; the chunk's log-prob is the sum of its K*A token log-probs.

forward_inputs (batch-first): "input_ids" (N, L), "attention_mask" (N, L), "images" (N, C, 3, S, S)
uint8 (C cameras: main, then wrist), "proprio" (N, P) float32 when proprio is used, and
"action_tokens" (N, K, A) int64 vocabulary ids.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from transformers import Dinov2WithRegistersConfig, LlamaConfig, SiglipVisionConfig

from vla_rl.config.model import ModelConfig
from vla_rl.models.action_codec import normalise
from vla_rl.models.base import ActOutput, EvaluateOutput, Obs
from vla_rl.models.images import stack_cameras
from vla_rl.models.openvla.policy import OpenVLAPolicy
from vla_rl.models.openvla_oft.network import OFTNetwork
from vla_rl.models.registry import POLICY_FAMILIES, EnvFacts
from vla_rl.models.sampling import choose_tokens, score_tokens
from vla_rl.models.tokenizer import trim_padding


@POLICY_FAMILIES.register("openvla_oft")
class OpenVLAOFTPolicy(OpenVLAPolicy):
    """OpenVLA parts, parallel decoding of an action chunk, optional wrist image and proprio token."""

    family = "openvla_oft"

    def __init__(self, net: OFTNetwork, tokenizer: Any, codec: Any, norm_stats: dict[str, Any], meta: dict[str, Any]) -> None:
        super().__init__(net, tokenizer, codec, norm_stats, meta)
        self.action_chunk = int(meta["action_chunk"])
        self.cameras = tuple(meta["cameras"])

    @property
    def reads_proprio(self) -> bool:
        return int(self.meta["proprio_dim"]) > 0

    def build_settings(self) -> dict[str, Any]:
        return {**super().build_settings(), "action_chunk": self.action_chunk, "use_proprio": self.reads_proprio,
                "use_wrist": "wrist" in self.cameras, "bidirectional_prompt": bool(self.meta["bidirectional_prompt"])}

    @classmethod
    def _extra_meta(cls, cfg: ModelConfig, env: EnvFacts) -> dict[str, Any]:
        cameras = ("main", "wrist") if cfg.use_wrist else ("main",)
        missing = [c for c in cameras if c not in env.cameras]
        if missing:
            raise ValueError(f"model.use_wrist needs cameras {cameras}; the environment has {env.cameras}")
        return {"action_chunk": cfg.action_chunk, "cameras": list(cameras),
                "proprio_dim": env.proprio_dim if cfg.use_proprio else 0,
                "bidirectional_prompt": cfg.bidirectional_prompt}

    @classmethod
    def _network(cls, dino: Dinov2WithRegistersConfig, siglip: SiglipVisionConfig, text: LlamaConfig,
                 first_action_id: int, meta: dict[str, Any]) -> OFTNetwork:
        meta.setdefault("action_chunk", 8)  # a published OFT checkpoint (LIBERO chunk) without our section
        meta.setdefault("cameras", ["main"])
        meta.setdefault("proprio_dim", 0)
        meta.setdefault("bidirectional_prompt", True)
        return OFTNetwork(dino, siglip, text, first_action_id, meta["value_hidden"], int(meta["proprio_dim"]),
                          text.eos_token_id if text.eos_token_id is not None else 2, bool(meta["bidirectional_prompt"]))

    def prepare(self, obs: Obs) -> dict[str, torch.Tensor]:
        images = stack_cameras(obs["images"], self.cameras, self.image_size, self.device)
        input_ids, attention_mask = self.prompts(list(obs["instruction"]), self.device)
        inputs = {"input_ids": input_ids, "attention_mask": attention_mask, "images": images}
        if self.net.proprio_projector is not None:
            inputs["proprio"] = torch.as_tensor(self._normalise_proprio(np.asarray(obs["proprio"])), device=self.device)
        return inputs

    def _normalise_proprio(self, proprio: np.ndarray) -> np.ndarray:
        """q01/q99 -> [-1, 1] when the checkpoint's statistics have a "proprio" entry; raw otherwise."""
        key = self.codec.extras.get("unnorm_key")
        stats = self.norm_stats.get(key, {}).get("proprio") if key else None
        if stats is None:
            return proprio.astype(np.float32)
        mask = stats.get("mask", [True] * len(stats["q01"]))
        return normalise(proprio, stats["q01"], stats["q99"], mask).astype(np.float32)

    def _logits(self, inputs: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor | None]:
        dev = self.device
        ids, mask = trim_padding(inputs["input_ids"].to(dev), inputs["attention_mask"].to(dev))
        proprio = inputs.get("proprio")
        embeds, full_mask = self.net.prefix_multi(ids, mask, inputs["images"].to(dev),
                                                  None if proprio is None else proprio.to(dev))
        slots, h_prompt = self.net.chunk_hidden(embeds, full_mask, self.action_chunk * self.action_dim)
        logits = self.net.action_logits(slots).view(-1, self.action_chunk, self.action_dim, 256)
        return logits, self.net.value(h_prompt)

    @torch.no_grad()
    def act(self, obs: Obs, mode: str = "sample", temperature: float = 1.0) -> ActOutput:
        inputs = self.prepare(obs)
        logits, values = self._logits(inputs)
        index, logp = choose_tokens(logits, mode, temperature)
        tokens = index + self.net.first_action_id
        inputs["action_tokens"] = tokens
        return ActOutput(actions=self.codec.decode(tokens.cpu().numpy()), forward_inputs=inputs, logprobs=logp,
                         values=values)

    def evaluate(self, forward_inputs: dict[str, torch.Tensor], temperature: float = 1.0) -> EvaluateOutput:
        needed = ["input_ids", "attention_mask", "images", "action_tokens"] + (["proprio"] if self.net.proprio_projector else [])
        missing = [k for k in needed if k not in forward_inputs]
        if missing:
            raise KeyError(f"forward_inputs lacks {missing}; pass the dict ActOutput.forward_inputs returned by act()")
        logits, values = self._logits(forward_inputs)
        tokens = forward_inputs["action_tokens"].to(self.device)
        logp, entropy = score_tokens(logits, tokens - self.net.first_action_id, temperature)
        return EvaluateOutput(logprobs=logp, entropy=entropy, values=values)


__all__ = ["OpenVLAOFTPolicy"]
