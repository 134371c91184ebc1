"""The CNN policy ("cnn"): a plain conv net over each camera + an MLP over proprio, 256-bin heads.

A quick baseline for single-task RL: it ignores the instruction. Each of the K x A action values is
a 256-way categorical over the same bins as OpenVLA (the codec runs with a virtual vocabulary of
256 ids, so "action_tokens" hold ids 0..255 with id = 256 - bin index), so log-prob granularity and
the algorithm side are the same as for the VLA families. The value head reads the trunk features.

forward_inputs: "images" (N, C, 3, S, S) uint8, "proprio" (N, P) float32 (when used),
"action_tokens" (N, K, A) int64.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from vla_rl.config.model import ModelConfig
from vla_rl.models.presets import size_preset
from vla_rl.models.action_codec import N_BINS, ActionCodec, identity_norm_stats
from vla_rl.models.cnn.encoders import CNN_ENCODERS
from vla_rl.models.base import ActOutput, EvaluateOutput, Obs, Policy
from vla_rl.models.codec_settings import make_codec, resolve, saved_fields
from vla_rl.models.checkpoint_io import read_config, read_weights, write_config, write_weights
from vla_rl.models.images import IMAGENET_MEAN, IMAGENET_STD, normalise_pixels, stack_cameras
from vla_rl.models.lora import load_adapter, save_adapter, split_state
from vla_rl.models.registry import POLICY_FAMILIES, EnvFacts
from vla_rl.models.sampling import choose_tokens, score_tokens
from vla_rl.models.value_head import ValueHead

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


@dataclass(frozen=True)
class CNNSize:
    """Dims of one size preset."""

    image_size: int
    """Square input side."""
    channels: tuple[int, int, int]
    """Output channels of the encoder's three conv stages (vla_rl.models.cnn.encoders)."""
    hidden: int
    """Width of the image projection, the proprio MLP and the trunk."""
    encoder: str = "flatten"
    """Image encoder (vla_rl.models.cnn.encoders.CNN_ENCODERS): flatten or keypoints."""


SIZES = {"tiny": CNNSize(64, (16, 32, 32), 128), "small": CNNSize(96, (32, 64, 64), 256),
         "tiny-keypoints": CNNSize(64, (16, 32, 32), 128, "keypoints")}


class CNNNetwork(nn.Module):
    """Shared image encoder per camera -> concat (+ proprio MLP) -> trunk -> action logits and value."""

    def __init__(self, size: CNNSize, n_cameras: int, proprio_dim: int, n_slots: int, value_head: bool) -> None:
        super().__init__()
        self.encoder = CNN_ENCODERS.get(size.encoder)(size.image_size, size.channels, size.hidden)
        self.proprio = nn.Sequential(nn.Linear(proprio_dim, size.hidden), nn.ReLU()) if proprio_dim else None
        width = size.hidden * (n_cameras + (1 if proprio_dim else 0))
        self.trunk = nn.Sequential(nn.Linear(width, size.hidden), nn.ReLU(), nn.Linear(size.hidden, size.hidden), nn.ReLU())
        self.action_head = nn.Linear(size.hidden, n_slots * N_BINS)
        self.value_head = ValueHead(size.hidden, size.hidden) if value_head else None

    def forward(self, images: torch.Tensor, proprio: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        n, c = images.shape[:2]
        dtype = self.action_head.weight.dtype
        x = normalise_pixels(images.flatten(0, 1), IMAGENET_MEAN, IMAGENET_STD, dtype)
        feats = [self.encoder(x).view(n, -1)]
        if self.proprio is not None:
            feats.append(self.proprio(proprio.to(dtype)))
        h = self.trunk(torch.cat(feats, dim=-1))
        return self.action_head(h).float(), None if self.value_head is None else self.value_head(h)


def _upgrade_flatten_keys(weights: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Checkpoints from before encoders were pluggable name the flatten encoder's layers
    `encoder.<i>` and `image_proj`; they are now `encoder.convs.<i>` and `encoder.proj`."""
    if "image_proj.weight" not in weights:
        return weights
    renamed = {}
    for key, value in weights.items():
        if key.startswith("image_proj."):
            key = "encoder.proj." + key[len("image_proj."):]
        elif key.startswith("encoder."):
            key = "encoder.convs." + key[len("encoder."):]
        renamed[key] = value
    return renamed


@POLICY_FAMILIES.register("cnn")
class CNNPolicy(Policy):
    """See the module docstring."""

    family = "cnn"

    def __init__(self, net: CNNNetwork, codec: ActionCodec, norm_stats: dict[str, Any], meta: dict[str, Any]) -> None:
        super().__init__()
        self.net, self.codec, self.norm_stats, self.meta = net, codec, norm_stats, meta
        self.action_dim = codec.action_dim
        self.action_chunk = int(meta["action_chunk"])
        self.cameras = tuple(meta["cameras"])
        self.image_size = int(meta["size"]["image_size"])

    @classmethod
    def _from_meta(cls, meta: dict[str, Any], norm_stats: dict[str, Any], codec_fields: dict[str, Any]) -> "CNNPolicy":
        size = CNNSize(**{**meta["size"], "channels": tuple(meta["size"]["channels"])})
        net = CNNNetwork(size, len(meta["cameras"]), int(meta["proprio_dim"]), meta["action_chunk"] * meta["action_dim"],
                         bool(meta["value_head"]))
        codec = make_codec(N_BINS, norm_stats, codec_fields)
        return cls(net, codec, norm_stats, meta)

    @classmethod
    def build(cls, cfg: ModelConfig, env: EnvFacts, seed: int) -> "CNNPolicy":
        size = size_preset(SIZES, cfg, "cnn")
        cameras = ("main", "wrist") if cfg.use_wrist else ("main",)
        if any(c not in env.cameras for c in cameras):
            raise ValueError(f"the cnn policy reads cameras {cameras}; the environment has {env.cameras}")
        meta = {"size": asdict(size), "cameras": list(cameras), "proprio_dim": env.proprio_dim if cfg.use_proprio else 0,
                "action_chunk": cfg.action_chunk, "action_dim": env.action_dim, "value_head": cfg.value_head}
        codec_fields = resolve(None, cfg, env.gripper_convention)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            policy = cls._from_meta(meta, {"identity": identity_norm_stats(env.action_dim)}, codec_fields)
        return policy.to(DTYPES[cfg.dtype])

    @classmethod
    def from_pretrained(cls, path: str, cfg: ModelConfig | None = None, unnorm_key: str | None = None) -> "CNNPolicy":
        config = read_config(path)
        section = config["vla_rl"]
        meta = dict(section["meta"])
        fresh_value_head = bool(cfg is not None and cfg.value_head and not meta["value_head"])
        meta["value_head"] = meta["value_head"] or fresh_value_head  # PPO from a checkpoint trained without a critic
        policy = cls._from_meta(meta, config["norm_stats"], resolve(section["codec"], cfg, None, unnorm_key))
        missing, unexpected = policy.net.load_state_dict(_upgrade_flatten_keys(read_weights(path)), strict=False)
        missing = [k for k in missing if not (fresh_value_head and k.startswith("value_head."))]
        if missing or unexpected:
            raise ValueError(f"{path}: weights do not match the config: missing {missing[:8]}, unexpected {unexpected[:8]}")
        return load_adapter(policy.to(DTYPES[cfg.dtype]) if cfg else policy, path)

    def save_pretrained(self, path: str) -> None:
        os.makedirs(path, exist_ok=True)
        codec = saved_fields(self.codec)
        write_config(path, {"model_type": "vla_rl_cnn", "norm_stats": self.norm_stats,
                            "vla_rl": {"family": self.family, "meta": self.meta, "codec": codec}})
        write_weights(path, split_state(self.net)[0])
        save_adapter(self, path)

    @property
    def reads_proprio(self) -> bool:
        return self.net.proprio is not None

    def build_settings(self) -> dict[str, Any]:
        return {"image_size": self.image_size, "action_chunk": self.action_chunk, "use_proprio": self.reads_proprio,
                "use_wrist": "wrist" in self.cameras}

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def prepare(self, obs: Obs) -> dict[str, torch.Tensor]:
        inputs = {"images": stack_cameras(obs["images"], self.cameras, self.image_size, self.device)}
        if self.net.proprio is not None:
            inputs["proprio"] = torch.as_tensor(obs["proprio"], dtype=torch.float32).to(self.device)  # numpy, or a GPU backend's tensor
        return inputs

    def _logits(self, inputs: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor | None]:
        proprio = inputs.get("proprio")
        logits, values = self.net(inputs["images"].to(self.device), None if proprio is None else proprio.to(self.device))
        return logits.view(-1, self.action_chunk, self.action_dim, N_BINS), values

    @torch.no_grad()
    def act(self, obs: Obs, mode: str = "sample", temperature: float = 1.0) -> ActOutput:
        inputs = self.prepare(obs)
        logits, values = self._logits(inputs)
        index, logp = choose_tokens(logits, mode, temperature)
        tokens = index + self.codec.first_action_id
        inputs["action_tokens"] = tokens
        return ActOutput(actions=self.codec.decode(tokens.cpu().numpy()), forward_inputs=inputs, logprobs=logp, values=values)

    @torch.no_grad()
    def value(self, obs: Obs) -> torch.Tensor | None:
        return self._logits(self.prepare(obs))[1]

    def evaluate(self, forward_inputs: dict[str, torch.Tensor], temperature: float = 1.0) -> EvaluateOutput:
        needed = ["images", "action_tokens"] + (["proprio"] if self.net.proprio is not None else [])
        missing = [k for k in needed if k not in forward_inputs]
        if missing:
            raise KeyError(f"forward_inputs lacks {missing}; pass the dict ActOutput.forward_inputs returned by act()")
        logits, values = self._logits(forward_inputs)
        index = forward_inputs["action_tokens"].to(self.device) - self.codec.first_action_id
        logp, entropy = score_tokens(logits, index, temperature)
        return EvaluateOutput(logprobs=logp, entropy=entropy, values=values)


__all__ = ["CNNPolicy", "CNNNetwork", "SIZES"]
