"""The OpenVLA-style policy ("openvla"): 7 action tokens per step, decoded autoregressively.

`act` prefills `[BOS][image patches][prompt]` once and decodes the action tokens against a KV
cache, sampling only among the 256 action ids; `evaluate` teacher-forces the stored tokens in one
forward pass and scores them under the same restricted, temperature-scaled distribution. The value
head reads the last prompt position (the one that predicts the first action token).

forward_inputs (batch-first): "input_ids" (N, L) int64 `[BOS][pads][prompt]`, "attention_mask"
(N, L) int64, "images" (N, 3, S, S) uint8 (already resized), "action_tokens" (N, 1, A) int64
vocabulary ids.
"""

from __future__ import annotations

import os
from typing import Any

import torch
from transformers import Dinov2WithRegistersConfig, LlamaConfig, PreTrainedTokenizerFast, SiglipVisionConfig

from vla_rl.config.model import ModelConfig
from vla_rl.models.presets import size_preset
from vla_rl.models.action_codec import ActionCodec, identity_norm_stats
from vla_rl.models.codec_settings import make_codec, resolve, saved_fields
from vla_rl.models.base import ActOutput, EvaluateOutput, Obs, Policy
from vla_rl.config.core import ConfigError
from vla_rl.models.checkpoint_io import read_config, read_weights, write_config, write_weights
from vla_rl.models.images import OPENVLA_DINO_MEAN, OPENVLA_DINO_STD, SIGLIP_MEAN, SIGLIP_STD, stack_cameras
from vla_rl.models.lora import load_adapter, save_adapter, split_state
from vla_rl.models.openvla.decoding import DECODERS
from vla_rl.models.openvla.layout import from_published_state, published_config, to_published_state, vla_rl_section_or_default
from vla_rl.models.openvla.network import OpenVLANetwork, positions_from_mask
from vla_rl.models.openvla.published import (PublishedLayout, detect_layout, norm_stats_of, preprocessor_config,
                                             write_dataset_statistics, write_preprocessor_config)
from vla_rl.models.precision import default_dtype, set_gradient_checkpointing
from vla_rl.models.openvla.spec import SIZES, config_to_dict, dino_config, llama_config, round_up, siglip_config
from vla_rl.models.registry import POLICY_FAMILIES, PUBLISHED_FORMATS, EnvFacts
from vla_rl.models.sampling import score_tokens
from vla_rl.models.tokenizer import PromptBatcher, build_tiny_tokenizer, trim_padding

# Keys of the saved vla_rl section that are rebuilt from elsewhere rather than kept in `meta`.
_DERIVED_SECTION_KEYS = ("family", "action_dim", "codec", "dino_config", "siglip_config")
FORWARD_KEYS = ("input_ids", "attention_mask", "images", "action_tokens")
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


@PUBLISHED_FORMATS.register("openvla")
def published_family(path: str, config: dict[str, Any]) -> str:
    """openvla, or openvla_oft when the folder holds OFT's action head or proprio projector (published.detect_layout)."""
    return detect_layout(path, config).family


@POLICY_FAMILIES.register("openvla")
class OpenVLAPolicy(Policy):
    """Fused DINOv2+SigLIP -> projector -> Llama, 256-bin action tokens (see the module docstring)."""

    family = "openvla"
    action_chunk = 1

    def __init__(self, net: OpenVLANetwork, tokenizer: Any, codec: ActionCodec, norm_stats: dict[str, Any],
                 meta: dict[str, Any]) -> None:
        super().__init__()
        self.net, self.tokenizer, self.codec, self.norm_stats, self.meta = net, tokenizer, codec, norm_stats, meta
        self.action_dim = codec.action_dim
        self.image_size = int(meta["image_size"])
        self.resize = str(meta.get("resize", "bilinear"))
        """How frames are resized to image_size (images.RESIZE_METHODS); saves before it was recorded used bilinear."""
        self.norm_stats_source = "built with the model"
        """Where `norm_stats` came from (named in errors about unnorm_key)."""
        self.prompts = PromptBatcher(tokenizer, int(meta["max_prompt_tokens"]), meta.get("prompt_suffix_id"))
        self.unused_published_weights: dict[str, torch.Tensor] = {}
        """Published vision tensors OpenVLA never reads (last blocks, norms, pool head), written back on save."""
        self.decoder = "kv_cache"
        """Which decoding loop `act` uses: "kv_cache" (fast) or "reference" (no cache; for tests)."""

    # ------------------------------------------------------------------ construction
    @classmethod
    def build(cls, cfg: ModelConfig, env: EnvFacts, seed: int) -> "OpenVLAPolicy":
        """Random weights (seeded) from the `cfg.size` preset, a byte-level tokenizer, identity statistics."""
        size = size_preset(SIZES, cfg, "openvla")
        if "main" not in env.cameras:
            raise ValueError(f"the openvla family reads the 'main' camera; the environment has {env.cameras}")
        tokenizer = build_tiny_tokenizer(size.base_vocab)
        text = llama_config(size, round_up(len(tokenizer), 64), tokenizer.pad_token_id, tokenizer.bos_token_id,
                            tokenizer.eos_token_id, max_positions=2048)
        meta = {
            "size": cfg.size, "image_size": size.image_size, "max_prompt_tokens": cfg.max_prompt_tokens,
            "prompt_suffix_id": None, "value_hidden": size.value_hidden if cfg.value_head else None,
            "resize": "bicubic_pil", **cls._extra_meta(cfg, env),
        }
        norm_stats = {"identity": identity_norm_stats(env.action_dim)}
        with torch.random.fork_rng(devices=[]), default_dtype(DTYPES[cfg.dtype]):  # no float32 copy of a 7b model
            torch.manual_seed(seed)
            net = cls._network(dino_config(size), siglip_config(size), text, tokenizer.vocab_size - 256, meta)
        codec = make_codec(tokenizer.vocab_size, norm_stats, resolve(None, cfg, env.gripper_convention))
        policy = cls(net, tokenizer, codec, norm_stats, meta).to(DTYPES[cfg.dtype])
        policy.set_gradient_checkpointing(cfg.gradient_checkpointing)
        return policy

    @classmethod
    def from_pretrained(cls, path: str, cfg: ModelConfig | None = None, unnorm_key: str | None = None) -> "OpenVLAPolicy":
        config = read_config(path)
        layout = detect_layout(path, config)
        section = vla_rl_section_or_default(config)
        tokenizer = PreTrainedTokenizerFast.from_pretrained(path)
        if tokenizer.pad_token_id is None:
            tokenizer.add_special_tokens({"pad_token": "<PAD>"})
        text = LlamaConfig(**config["text_config"])
        dino = Dinov2WithRegistersConfig(**section["dino_config"])
        siglip = SiglipVisionConfig(**section["siglip_config"])
        value_hidden = section.get("value_hidden")
        if cfg is not None and cfg.value_head and value_hidden is None:
            value_hidden = text.hidden_size  # a fresh value head for a checkpoint trained without one
        meta = {k: v for k, v in section.items() if k not in _DERIVED_SECTION_KEYS}
        meta.update(value_hidden=value_hidden, max_prompt_tokens=cfg.max_prompt_tokens if cfg else section["max_prompt_tokens"])
        meta = cls._checkpoint_meta(meta, path, layout, cfg, text.hidden_size)
        net = cls._network(dino, siglip, text, tokenizer.vocab_size - 256, meta)
        state, unused = from_published_state(read_weights(path), dino, siglip)
        state.update(cls._component_state(path, layout, state))
        missing, unexpected = net.load_state_dict(state, strict=False)
        fresh = cls._fresh_prefixes(section)
        missing = [k for k in missing if not k.startswith(fresh)]
        if missing or unexpected:
            raise ValueError(f"{path}: weights do not match the config: missing {missing[:8]}, unexpected {unexpected[:8]}")
        norm_stats, source = norm_stats_of(path, config)
        norm_stats = norm_stats or {"identity": identity_norm_stats(section.get("action_dim", 7))}
        try:
            codec = make_codec(tokenizer.vocab_size, norm_stats, resolve(section.get("codec"), cfg, None, unnorm_key))
        except ValueError as exc:
            raise ConfigError(f"{exc} (statistics from {source})", key="model.unnorm_key") from None
        policy = cls(net, tokenizer, codec, norm_stats, meta)
        policy.unused_published_weights = unused
        policy.norm_stats_source = source
        dtype = DTYPES[cfg.dtype] if cfg else next(iter(state.values())).dtype
        policy = policy.to(dtype if dtype.is_floating_point else torch.float32)
        policy._after_load(cfg)
        if cfg is not None:
            policy.set_gradient_checkpointing(cfg.gradient_checkpointing)
        return load_adapter(policy, path)

    @classmethod
    def _checkpoint_meta(cls, meta: dict[str, Any], path: str, layout: PublishedLayout, cfg: ModelConfig | None,
                         llm_dim: int) -> dict[str, Any]:
        """The loaded policy's meta from the folder's layout (and, for what a folder does not record, `cfg`)."""
        if layout.name.startswith("oft"):
            found = ", ".join(os.path.basename(f) for f in (layout.action_head_file, layout.proprio_file) if f)
            raise ConfigError(f"{path} is an OpenVLA-OFT checkpoint ({found}); load it with model.family=openvla_oft",
                              key="model.family")
        return meta

    @classmethod
    def _component_state(cls, path: str, layout: PublishedLayout, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Weights stored beside model.safetensors (OFT's .pt components); none for OpenVLA."""
        return {}

    @classmethod
    def _fresh_prefixes(cls, section: dict[str, Any]) -> tuple[str, ...]:
        """Parameter-name prefixes a checkpoint may lack (they keep their fresh initialisation)."""
        return ("value_head.",) if section.get("value_hidden") is None else ()

    def _after_load(self, cfg: ModelConfig | None) -> None:
        """Run-time settings `cfg` changes on a loaded policy (none for OpenVLA beyond the codec)."""

    def set_action_decoding(self, gripper_convention: str | None = None, unnorm_key: str | None = None) -> None:
        try:
            super().set_action_decoding(gripper_convention=gripper_convention, unnorm_key=unnorm_key)
        except ValueError as exc:
            raise ConfigError(f"{exc} (statistics from {self.norm_stats_source})", key="model.unnorm_key") from None

    def build_settings(self) -> dict[str, Any]:
        return {"size": self.meta["size"], "image_size": self.image_size}

    @classmethod
    def _extra_meta(cls, cfg: ModelConfig, env: EnvFacts) -> dict[str, Any]:
        """Family-specific facts saved in the config's vla_rl section (none for plain OpenVLA)."""
        return {}

    @classmethod
    def _network(cls, dino: Dinov2WithRegistersConfig, siglip: SiglipVisionConfig, text: LlamaConfig,
                 first_action_id: int, meta: dict[str, Any]) -> OpenVLANetwork:
        return OpenVLANetwork(dino, siglip, text, first_action_id, meta["value_hidden"])

    def save_pretrained(self, path: str) -> None:
        """config.json (published keys + our section), model.safetensors, tokenizer, dataset_statistics.json and
        preprocessor_config.json as OpenVLA's scripts expect them (docs/models.md, what a save writes)."""
        os.makedirs(path, exist_ok=True)
        dino, siglip = self.net.vision_backbone.featurizer.config, self.net.vision_backbone.fused_featurizer.config
        section = {"family": self.family, **self.meta, "action_dim": self.action_dim, "codec": saved_fields(self.codec),
                   "dino_config": config_to_dict(dino), "siglip_config": config_to_dict(siglip)}
        text = config_to_dict(self.net.language_model.config)
        dtype = str(next(self.parameters()).dtype).removeprefix("torch.")
        write_config(path, published_config(text, self.norm_stats, section, self.tokenizer.pad_token_id, dtype))
        state = self._save_components(path, split_state(self.net)[0])
        state = to_published_state(state, dino, siglip)
        state.update(self.unused_published_weights)
        write_weights(path, state)
        save_adapter(self, path)
        self.tokenizer.save_pretrained(path)
        write_dataset_statistics(path, self.norm_stats)
        write_preprocessor_config(path, preprocessor_config(self.image_size, OPENVLA_DINO_MEAN, OPENVLA_DINO_STD,
                                                            SIGLIP_MEAN, SIGLIP_STD))

    def _save_components(self, path: str, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Write the parts stored beside model.safetensors; returns the rest of `state` (all of it for OpenVLA)."""
        return state

    # ------------------------------------------------------------------ rollout and training
    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def set_gradient_checkpointing(self, on: bool) -> None:
        """Recompute each ViT block's and LM layer's activations in the backward (training mode only):
        per sample, the blocks' inputs are kept instead of their activations (memory_plan.py)."""
        vision = self.net.vision_backbone
        set_gradient_checkpointing([vision.featurizer, vision.fused_featurizer, self.net.language_model], on)

    def prepare(self, obs: Obs) -> dict[str, torch.Tensor]:
        """Observation -> the model inputs of forward_inputs (without action tokens)."""
        images = stack_cameras(obs["images"], ("main",), self.image_size, self.device, self.resize)[:, 0]
        instructions = list(obs["instruction"])
        if len(instructions) != images.shape[0]:
            raise ValueError(f"{len(instructions)} instructions for {images.shape[0]} images")
        input_ids, attention_mask = self.prompts(instructions, self.device)
        return {"input_ids": input_ids, "attention_mask": attention_mask, "images": images}

    @torch.no_grad()
    def act(self, obs: Obs, mode: str = "sample", temperature: float = 1.0) -> ActOutput:
        inputs = self.prepare(obs)
        ids, mask = trim_padding(inputs["input_ids"], inputs["attention_mask"])
        embeds, full_mask = self.net.prefix(ids, mask, inputs["images"])
        index, logp, h_prompt = DECODERS[self.decoder](self.net, embeds, full_mask, self.action_dim, mode, temperature)
        tokens = index + self.net.first_action_id
        actions = self.codec.decode(tokens.cpu().numpy())[:, None, :]
        inputs["action_tokens"] = tokens[:, None, :]
        return ActOutput(actions=actions, forward_inputs=inputs, logprobs=logp[:, None, :].float(),
                         values=self.net.value(h_prompt))

    @torch.no_grad()
    def value(self, obs: Obs) -> torch.Tensor | None:
        if self.net.value_head is None:
            return None
        inputs = self.prepare(obs)
        ids, mask = trim_padding(inputs["input_ids"], inputs["attention_mask"])
        embeds, full_mask = self.net.prefix(ids, mask, inputs["images"])
        return self.net.value(self.net.backbone(embeds, full_mask, positions_from_mask(full_mask))[:, -1])

    def evaluate(self, forward_inputs: dict[str, torch.Tensor], temperature: float = 1.0) -> EvaluateOutput:
        missing = [k for k in FORWARD_KEYS if k not in forward_inputs]
        if missing:
            raise KeyError(f"forward_inputs lacks {missing}; pass the dict ActOutput.forward_inputs returned by act()")
        dev = self.device
        ids, mask = trim_padding(forward_inputs["input_ids"].to(dev), forward_inputs["attention_mask"].to(dev))
        tokens = forward_inputs["action_tokens"].to(dev)[:, 0]
        embeds, full_mask = self.net.prefix(ids, mask, forward_inputs["images"].to(dev))
        t = embeds.shape[1]
        seq = torch.cat([embeds, self.net.embed_ids(tokens[:, :-1])], dim=1)
        seq_mask = torch.cat([full_mask, full_mask.new_ones(full_mask.shape[0], tokens.shape[1] - 1)], dim=1)
        hidden = self.net.backbone(seq, seq_mask, positions_from_mask(seq_mask))
        logits = self.net.action_logits(hidden[:, t - 1:])
        logp, entropy = score_tokens(logits, tokens - self.net.first_action_id, temperature)
        return EvaluateOutput(logprobs=logp[:, None], entropy=entropy[:, None], values=self.net.value(hidden[:, t - 1]))


__all__ = ["OpenVLAPolicy"]
