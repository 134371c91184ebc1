"""The flow-matching policy ("pi0"): a chunk of H continuous actions in K denoising steps.

`act` runs the prefix once (images + prompt through SigLIP and the Gemma LM; its per-layer keys and
values are reused by every step) and then K expert passes from x_0 ~ N(0, I) at t = 1 to the chunk
at t = 0. In "sample" mode each step is a Gaussian (`flow.STEP_GAUSSIANS`: flow_sde or flow_noise)
whose std is multiplied by the temperature; in "greedy" mode the chain follows the ODE (openpi's
sampler) from x_0 = 0, the noise distribution's mean, so that it is deterministic. The whole chain x_0 .. x_K is stored, so `evaluate` recomputes every step's mean and std
in one batched expert pass (with gradients) and scores x_{k+1} under them.

Log-probs and entropies are per action element (N, H, A): the sum over the K steps of that
element's Gaussian log-density / entropy, so their sum over the chunk is the chain's log-density
given x_0 (`logprob_granularity: chunk` takes the ratio of the whole chain). Dims past the
environment's action size (zero-padded model dims, 32 in openpi) follow the ODE and are not scored.
Greedy mode reports the log-density of its chain under the temperature-1 kernel.

The value head reads the mean of the prefix's final hidden states. SFT uses the flow-matching loss
(`supervised_loss`): MSE between the predicted velocity at a random time and noise - action.

forward_inputs (batch-first): "images" (N, C, 3, S, S) uint8, "input_ids" / "attention_mask" (N, L)
int64, "proprio" (N, P) float32 when a pi0 model reads proprio (pi0.5 writes it into the prompt),
"chain" (N, K + 1, H, D) float32.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import numpy as np
import torch
from transformers import PreTrainedTokenizerFast

from vla_rl.config.model import ModelConfig
from vla_rl.models.presets import size_preset
from vla_rl.models.action_codec import ActionCodec, identity_norm_stats
from vla_rl.models.base import ActOutput, EvaluateOutput, Obs, Policy, SupervisedOutput, host_proprio
from vla_rl.models.checkpoint_io import read_config, read_weights, write_config, write_weights
from vla_rl.models.codec_settings import make_codec, resolve, saved_fields
from vla_rl.models.images import stack_cameras
from vla_rl.models.lora import load_adapter, save_adapter, split_state
from vla_rl.models.openvla_oft.checkpoint import normalise_proprio
from vla_rl.models.pi0 import flow
from vla_rl.models.pi0.layout import from_published_state, published_config, section_or_default, to_published_state
from vla_rl.models.pi0.network import Pi0Network
from vla_rl.models.pi0.prompt import Pi0Prompts
from vla_rl.models.pi0.spec import SIZES, Pi0Size
from vla_rl.models.registry import POLICY_FAMILIES, PUBLISHED_FORMATS, EnvFacts
from vla_rl.models.tokenizer import build_tiny_tokenizer, trim_padding

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
SAMPLER_KEYS = ("denoise_steps", "noise_method", "noise_level")
"""Sampler settings: saved with the checkpoint, and taken from the run's config when one is given."""


@PUBLISHED_FORMATS.register("pi0")
@PUBLISHED_FORMATS.register("pi05")
def _published_family(path: str, config: dict[str, Any]) -> str:
    """An openpi / LeRobot pi0 or pi0.5 folder (config.json `model_type` or LeRobot's `type`) loads as pi0."""
    return "pi0"


@POLICY_FAMILIES.register("pi0")
class Pi0Policy(Policy):
    """PaliGemma-style prefix + action expert + flow-matching chain (see the module docstring)."""

    family = "pi0"
    action_key = "chain"
    discrete_actions = False

    def __init__(self, net: Pi0Network, tokenizer: Any, codec: ActionCodec, norm_stats: dict[str, Any],
                 meta: dict[str, Any]) -> None:
        super().__init__()
        self.net, self.tokenizer, self.codec, self.norm_stats, self.meta = net, tokenizer, codec, norm_stats, meta
        self.action_dim = codec.action_dim
        self.action_chunk = int(meta["action_chunk"])
        self.cameras = tuple(meta["cameras"])
        self.image_size = net.size.image_size
        self.prompts = Pi0Prompts(tokenizer, int(meta["max_prompt_tokens"]), net.pi05)
        self.unused_published_weights: dict[str, torch.Tensor] = {}
        """Published tensors the network never reads (the expert's LM head), written back on save."""

    # ------------------------------------------------------------------ construction
    @classmethod
    def build(cls, cfg: ModelConfig, env: EnvFacts, seed: int) -> "Pi0Policy":
        """Random weights (seeded) from the `cfg.size` preset, a byte-level tokenizer, identity statistics."""
        size = size_preset(SIZES, cfg, "pi0")
        if size.image_size % size.patch_size:
            raise ValueError(f"model.image_size={size.image_size} is not a multiple of the {size.patch_size} px patch")
        cameras = ["main", "wrist"] if cfg.use_wrist else ["main"]
        missing = [c for c in cameras if c not in env.cameras]
        if missing:
            raise ValueError(f"the pi0 policy reads cameras {cameras}; the environment has {env.cameras} (model.use_wrist)")
        proprio_dim = env.proprio_dim if cfg.use_proprio else 0
        pad = lambda dim, to: max(dim, to or 0)  # noqa: E731 - zero-padded model sizes (openpi: 32)
        meta = {"size": cfg.size, "size_dims": dataclasses.asdict(size), "action_dim": env.action_dim,
                "model_action_dim": pad(env.action_dim, size.max_action_dim),
                "proprio_dim": proprio_dim, "state_dim": pad(proprio_dim, size.max_state_dim) if proprio_dim else 0,
                "action_chunk": cfg.action_chunk, "cameras": cameras, "max_prompt_tokens": cfg.max_prompt_tokens,
                "value_hidden": size.value_hidden if cfg.value_head else None,
                "noise_std": [cfg.noise_std_min, cfg.noise_std_max] if cfg.noise_method == "flow_noise" else None,
                **{key: getattr(cfg, key) for key in SAMPLER_KEYS}}
        norm_stats = {"identity": identity_norm_stats(env.action_dim)}
        tokenizer = build_tiny_tokenizer()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            net = cls._network(size, tokenizer, meta)
        codec = make_codec(256, norm_stats, resolve(None, cfg, env.gripper_convention))
        return cls(net, tokenizer, codec, norm_stats, meta).to(DTYPES[cfg.dtype])

    @staticmethod
    def _network(size: Pi0Size, tokenizer: Any, meta: dict[str, Any]) -> Pi0Network:
        vocab = size.vocab_size or (len(tokenizer) + 63) // 64 * 64
        # pi0.5 writes the state into the prompt; pi0 reads it through a state token
        state_dim = 0 if size.pi05 else int(meta["state_dim"])
        noise_std = tuple(meta["noise_std"]) if meta.get("noise_std") else None
        return Pi0Network(size, vocab, tokenizer.pad_token_id, int(meta["model_action_dim"]), state_dim,
                          meta["value_hidden"], noise_std)

    @classmethod
    def from_pretrained(cls, path: str, cfg: ModelConfig | None = None, unnorm_key: str | None = None) -> "Pi0Policy":
        config = read_config(path)
        section = section_or_default(config)
        meta = {k: v for k, v in section.items() if k not in ("family", "codec")}
        saved_value, saved_noise = meta.get("value_hidden"), meta.get("noise_std")
        size = Pi0Size(**meta["size_dims"])
        if cfg is not None:
            meta.update({key: getattr(cfg, key) for key in SAMPLER_KEYS}, max_prompt_tokens=cfg.max_prompt_tokens)
            if cfg.value_head and saved_value is None:
                meta["value_hidden"] = size.value_hidden  # a fresh critic for a checkpoint trained without one
            if cfg.noise_method == "flow_noise":
                meta["noise_std"] = [cfg.noise_std_min, cfg.noise_std_max]  # a fresh noise head if it had none
        try:
            tokenizer = PreTrainedTokenizerFast.from_pretrained(path)
        except (OSError, ValueError) as exc:
            raise ValueError(f"{path} has no tokenizer files; copy the checkpoint's tokenizer (tokenizer.json, "
                             "tokenizer_config.json, special_tokens_map.json) into it") from exc
        net = cls._network(size, tokenizer, meta)
        state, unused = from_published_state(read_weights(path), set(net.state_dict()))
        missing, unexpected = net.load_state_dict(state, strict=False)
        fresh = (("value_head.",) if saved_value is None else ()) + (("noise_head.",) if saved_noise is None else ())
        missing = [k for k in missing if not k.startswith(fresh) and k != "paligemma_with_expert.paligemma.lm_head.weight"]
        if missing or unexpected:
            raise ValueError(f"{path}: weights do not match the config: missing {missing[:8]}, unexpected {unexpected[:8]}")
        norm_stats = config.get("norm_stats") or {"identity": identity_norm_stats(int(meta["action_dim"]))}
        codec = make_codec(256, norm_stats, resolve(section.get("codec"), cfg, None, unnorm_key))
        policy = cls(net, tokenizer, codec, norm_stats, meta)
        policy.unused_published_weights = unused
        dtype = DTYPES[cfg.dtype] if cfg else next(iter(state.values())).dtype
        return load_adapter(policy.to(dtype if dtype.is_floating_point else torch.float32), path)

    def save_pretrained(self, path: str) -> None:
        os.makedirs(path, exist_ok=True)
        dtype = str(next(self.parameters()).dtype).removeprefix("torch.")
        section = {"family": self.family, **self.meta, "codec": saved_fields(self.codec)}
        write_config(path, published_config(self.meta["size"], self.net.size, self.meta, self.norm_stats, section, dtype))
        state = to_published_state(split_state(self.net)[0])
        state.update(self.unused_published_weights)
        write_weights(path, state)
        save_adapter(self, path)
        self.tokenizer.save_pretrained(path)

    @property
    def reads_proprio(self) -> bool:
        return int(self.meta["proprio_dim"]) > 0

    def build_settings(self) -> dict[str, Any]:
        return {"size": self.meta["size"], "image_size": self.image_size, "action_chunk": self.action_chunk,
                "use_proprio": self.reads_proprio, "use_wrist": "wrist" in self.cameras}

    # ------------------------------------------------------------------ inputs
    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def prepare(self, obs: Obs) -> dict[str, torch.Tensor]:
        """Observation -> the model inputs of forward_inputs (without the chain)."""
        images = stack_cameras(obs["images"], self.cameras, self.image_size, self.device)
        instructions = list(obs["instruction"])
        if len(instructions) != images.shape[0]:
            raise ValueError(f"{len(instructions)} instructions for {images.shape[0]} images")
        proprio = None
        if self.reads_proprio:
            proprio = self._normalise_proprio(host_proprio(obs))
        input_ids, attention_mask = self.prompts(instructions, proprio, self.device)
        inputs = {"images": images, "input_ids": input_ids, "attention_mask": attention_mask}
        if self.reads_proprio and not self.net.pi05:
            inputs["proprio"] = torch.as_tensor(proprio, device=self.device)
        return inputs

    def _normalise_proprio(self, proprio: np.ndarray) -> np.ndarray:
        """q01/q99 -> [-1, 1] (clipped, OFT's rule) when the chosen dataset's statistics have "proprio"; raw otherwise."""
        stats = self.norm_stats.get(self.codec.extras.get("unnorm_key"), {}).get("proprio")
        return (proprio if stats is None else normalise_proprio(proprio, stats)).astype(np.float32)

    def _check(self, inputs: dict[str, torch.Tensor], extra: str) -> None:
        needed = ["images", "input_ids", "attention_mask", extra] + (["proprio"] if self.net.has_state_token else [])
        missing = [k for k in needed if k not in inputs]
        if missing:
            source = "ActOutput.forward_inputs returned by act()" if extra == "chain" else "sft.dataset.forward_inputs"
            raise KeyError(f"forward_inputs lacks {missing}; pass the dict {source}")

    def _prefix(self, inputs: dict[str, torch.Tensor]):
        dev = self.device
        ids, mask = trim_padding(inputs["input_ids"].to(dev), inputs["attention_mask"].to(dev))
        kv, hidden, valid = self.net.prefix(inputs["images"].to(dev), ids, mask)
        state = None
        if self.net.has_state_token:
            proprio = inputs["proprio"].to(dev).float()
            state = torch.nn.functional.pad(proprio, (0, self.net.state_dim - proprio.shape[-1]))
        return kv, valid, state, self.net.value(hidden, valid)

    def _gaussian(self, x: torch.Tensor, v: torch.Tensor, t: torch.Tensor, features: torch.Tensor,
                  temperature: float) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean, std) of one denoising step from x at times t (broadcastable), std scaled by `temperature`."""
        kernel = flow.STEP_GAUSSIANS.get(self.meta["noise_method"])
        if kernel.learned_std:
            if self.net.noise_head is None:
                raise ValueError("model.noise_method=flow_noise needs the policy's noise head; load it with that config")
            noise = self.net.noise_head(features)
        else:
            noise = float(self.meta["noise_level"])
        mean, std = kernel.fn(x, v, t, 1.0 / self.denoise_steps, noise)
        return mean, std * temperature

    @property
    def denoise_steps(self) -> int:
        return int(self.meta["denoise_steps"])

    # ------------------------------------------------------------------ rollout and training
    @torch.no_grad()
    def act(self, obs: Obs, mode: str = "sample", temperature: float = 1.0) -> ActOutput:
        if mode not in ("sample", "greedy"):
            raise ValueError(f"mode={mode!r}; use 'sample' or 'greedy'")
        if mode == "sample" and temperature <= 0:
            raise ValueError(f"temperature={temperature} must be > 0 for sampling; use mode='greedy' for the ODE")
        inputs = self.prepare(obs)
        kv, valid, state, values = self._prefix(inputs)
        n, a, dt = valid.shape[0], self.action_dim, 1.0 / self.denoise_steps
        x = torch.zeros(n, self.action_chunk, self.net.action_dim, device=self.device)
        if mode == "sample":
            x = torch.randn_like(x)
        grid = flow.time_grid(self.denoise_steps, self.device)
        chain, noises, means, stds = [x], [], [], []
        logp = torch.zeros(n, self.action_chunk, a, device=self.device)
        scale = temperature if mode == "sample" else 1.0
        for k in range(self.denoise_steps):
            t = grid[k].expand(n)
            v, features = self.net.velocity(kv, valid, x, t, state)
            mean, std = self._gaussian(x, v, t[:, None, None], features, scale)
            nxt = flow.ode_step(x, v, dt)
            eps = torch.zeros_like(mean[..., :a])
            if mode == "sample":
                eps = torch.randn_like(eps)
                nxt = torch.cat([mean[..., :a] + std[..., :a] * eps, nxt[..., a:]], dim=-1)
            logp += flow.gaussian_logprob(nxt[..., :a], mean[..., :a], std[..., :a])
            x = nxt
            chain.append(x)
            noises.append(eps)
            means.append(mean[..., :a])
            stds.append(std[..., :a])
        inputs["chain"] = torch.stack(chain, dim=1)
        steps = {"noise": torch.stack(noises, 1), "means": torch.stack(means, 1), "stds": torch.stack(stds, 1)}
        return ActOutput(actions=self.codec.to_env(x[..., :a].cpu().numpy()), forward_inputs=inputs, logprobs=logp,
                         values=values, chain=steps)

    @torch.no_grad()
    def value(self, obs: Obs) -> torch.Tensor | None:
        return self._prefix(self.prepare(obs))[3]

    def evaluate(self, forward_inputs: dict[str, torch.Tensor], temperature: float = 1.0) -> EvaluateOutput:
        self._check(forward_inputs, "chain")
        if temperature <= 0:
            raise ValueError(f"temperature={temperature} must be > 0")
        chain = forward_inputs["chain"].to(self.device).float()
        steps = chain.shape[1] - 1
        if steps != self.denoise_steps:
            raise ValueError(f"the stored chain has {steps} denoising steps but model.denoise_steps={self.denoise_steps}; "
                             "score a rollout with the settings that sampled it")
        kv, valid, state, values = self._prefix(forward_inputs)
        n, a = chain.shape[0], self.action_dim
        # every step of every sample in one expert pass: the prefix's keys/values repeated per step
        kv_steps = [(k.repeat_interleave(steps, 0), v.repeat_interleave(steps, 0)) for k, v in kv]
        t = flow.time_grid(steps, self.device)[:-1].repeat(n)
        x = chain[:, :-1].flatten(0, 1)
        v, features = self.net.velocity(kv_steps, valid.repeat_interleave(steps, 0), x, t,
                                        None if state is None else state.repeat_interleave(steps, 0))
        mean, std = self._gaussian(x, v, t[:, None, None], features, temperature)
        target = chain[:, 1:].flatten(0, 1)[..., :a]
        logp = flow.gaussian_logprob(target, mean[..., :a], std[..., :a]).view(n, steps, -1, a).sum(1)
        entropy = flow.gaussian_entropy(std[..., :a]).view(n, steps, -1, a).sum(1)
        return EvaluateOutput(logprobs=logp, entropy=entropy, values=values)

    # ------------------------------------------------------------------ supervised (flow matching)
    def demo_targets(self, actions: np.ndarray) -> dict[str, torch.Tensor]:
        """Demo chunks (N, H, A) in the env's action space -> "demo_actions" (N, H, D): normalised, zero-padded."""
        x = torch.as_tensor(self.codec.from_env(actions), dtype=torch.float32)
        return {"demo_actions": torch.nn.functional.pad(x, (0, self.net.action_dim - x.shape[-1]))}

    def supervised_loss(self, forward_inputs: dict[str, torch.Tensor], mask: torch.Tensor) -> SupervisedOutput:
        """Flow matching: at t ~ Beta(1.5, 1) (openpi's), the velocity's squared error to noise - action over the
        env's action dims, averaged over valid chunk entries (N, H) of `mask`. Draws from the global RNG."""
        self._check(forward_inputs, "demo_actions")
        actions = forward_inputs["demo_actions"].to(self.device).float()
        kv, valid, state, values = self._prefix(forward_inputs)
        noise = torch.randn_like(actions)
        t = flow.sample_time(actions.shape[0], self.device)
        x_t = t[:, None, None] * noise + (1.0 - t[:, None, None]) * actions
        v, _ = self.net.velocity(kv, valid, x_t, t, state)
        error = (v - (noise - actions))[..., :self.action_dim].square().mean(-1)
        weights = mask.to(error.device, error.dtype)
        loss = (error * weights).sum() / weights.sum().clamp_min(1.0)
        return SupervisedOutput(loss=loss, values=values, metrics={"flow_mse": float(loss.detach())})


__all__ = ["Pi0Policy", "SAMPLER_KEYS"]
