"""GPU memory of the OpenVLA families, computed from a policy's config: weights, LoRA trainables and
their AdamW state, the KV cache of a rollout, and what autograd keeps per training sample.

`plan_memory(policy, ...)` reads every number off the policy (parameter counts from its modules, dims
from its transformers configs, which linear layers carry adapters), so it works on a 7B policy built
on the meta device (no memory, no download):

    with torch.device("meta"):
        policy = build_policy(ModelConfig(family="openvla", size="7b", dtype="bfloat16",
                                          lora=LoraConfig(enabled=True)), 7, ("main",), 8, seed=0)
    print(plan_memory(policy).table())

Activations per sample are the tensors autograd saves for the backward of `policy.evaluate`, summed
block by block (`_vit_block`, `_llama_block`, ...). `saved_activation_bytes(fn)` measures the same
quantity on a real forward (saved-tensor hooks, parameters and views of a saved tensor counted
once); tests/models/test_memory_plan.py checks the two agree on tiny models. Gradient checkpointing
keeps only each checkpointed block's input plus, during the backward, one block's activations.

Assumptions (parameters of `plan_memory`): the prompt's token count (instruction + template; the
policy trims padding to the batch's longest prompt), SDPA attention that saves q, k, v, the output
and its log-sum-exp (flash / memory-efficient kernels; no T x T probabilities), norm statistics in
float32 (CUDA's kernels).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from torch import nn

GB = 1e9


# ---------------------------------------------------------------------------------------- measuring


def saved_activation_bytes(fn: Callable[[], Any], exclude: nn.Module | None = None) -> tuple[int, Any]:
    """(bytes autograd saves while running `fn`, fn's result). Tensors that are (views of) parameters
    of `exclude` are not activations and are skipped; several views of one tensor count once."""
    params = {id(p) for p in exclude.parameters()} if exclude is not None else set()
    seen: dict[int, torch.Tensor] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        base = t._base if t._base is not None else t
        if id(base) not in params:
            seen.setdefault(id(base), base)
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = fn()
    return sum(t.numel() * t.element_size() for t in seen.values()), out


# ---------------------------------------------------------------------------------------- the parts


@dataclass(frozen=True)
class BlockAdapters:
    """Which linear layers of one transformer block carry LoRA adapters."""

    qkv: tuple[bool, bool, bool] = (False, False, False)
    out: bool = False
    mlp_in: tuple[bool, ...] = ()
    """fc1 (ViT) or gate, up (Llama)."""
    mlp_out: bool = False

    @property
    def any(self) -> bool:
        return any(self.qkv) or self.out or any(self.mlp_in) or self.mlp_out


def _adapted(module: nn.Module, name: str) -> bool:
    from peft.tuners.lora import LoraLayer

    sub = module.get_submodule(name) if name else module
    return isinstance(sub, LoraLayer)


def _vit_adapters(block: nn.Module) -> BlockAdapters:
    """DINOv2-with-registers and SigLIP encoder layers of transformers 5."""
    names = {n: _adapted(block, n) for n, _ in block.named_modules() if n}
    find = lambda *suffixes: any(v for n, v in names.items() if n.endswith(suffixes))  # noqa: E731
    return BlockAdapters(qkv=(find("q_proj", "query"), find("k_proj", "key"), find("v_proj", "value")),
                         out=find("out_proj", "attention.output.dense", "o_proj"),
                         mlp_in=(find("fc1"),), mlp_out=find("fc2"))


def _llama_adapters(layer: nn.Module) -> BlockAdapters:
    a = lambda n: _adapted(layer, n)  # noqa: E731
    return BlockAdapters(qkv=(a("self_attn.q_proj"), a("self_attn.k_proj"), a("self_attn.v_proj")),
                         out=a("self_attn.o_proj"), mlp_in=(a("mlp.gate_proj"), a("mlp.up_proj")),
                         mlp_out=a("mlp.down_proj"))


def _attention(t: int, hidden: int, heads: int, e: int) -> int:
    """SDPA with grad: q, k, v (expanded to all heads), output, log-sum-exp (float32)."""
    return 4 * t * hidden * e + heads * t * 4


def _vit_block(t: int, h: int, i: int, heads: int, r: int, e: int, ad: BlockAdapters, grad_in: bool) -> int:
    """Saved bytes of a pre-norm ViT block (LayerNorm, attention, GELU MLP) for one sample of t tokens."""
    stats = 2 * t * 4
    total = (t * h * e + stats) if grad_in else 0  # norm1 keeps its input (and mean/rstd) when grad flows in
    total += t * h * e if any(ad.qkv) else 0  # the normalised input, read by the adapters
    total += sum(ad.qkv) * t * r * e
    total += _attention(t, h, heads, e)
    total += t * r * e if ad.out else 0
    total += t * h * e + stats  # norm2 (its input needs grad from here on)
    total += (t * h * e if ad.mlp_in[0] else 0) + (t * r * e if ad.mlp_in[0] else 0)
    total += t * i * e  # GELU input
    total += (t * i * e + t * r * e) if ad.mlp_out else 0
    return total


def _llama_block(t: int, h: int, i: int, heads: int, r: int, e: int, ad: BlockAdapters, own_mask: bool) -> int:
    """Saved bytes of a Llama decoder layer (RMSNorm, rotary SDPA attention, SwiGLU MLP) for one sample;
    `own_mask`: transformers builds this layer an additive mask of its own (from a 2-D padding mask)."""
    rms = t * h * 4 + t * 4  # the float32 copy RMSNorm computes in, and its rsqrt
    total = rms + (t * h * e if any(ad.qkv) else 0) + sum(ad.qkv) * t * r * e
    total += t * t * e if own_mask else 0  # the additive attention mask (SDPA keeps it for the backward)
    total += _attention(t, h, heads, e) + (t * r * e if ad.out else 0)
    total += rms + (t * h * e if any(ad.mlp_in) else 0) + sum(ad.mlp_in) * t * r * e
    total += 3 * t * i * e  # gate output (SiLU input), up output, SiLU output
    total += (t * i * e + t * r * e) if ad.mlp_out else 0
    return total


def _checkpointed(blocks: list[int], inputs: list[int]) -> tuple[int, int]:
    """(kept between forward and backward, extra peak during the backward) with one checkpoint per block."""
    return sum(inputs), max(blocks, default=0)


# ---------------------------------------------------------------------------------------- the plan


@dataclass(frozen=True)
class MemoryPlan:
    """Bytes of one OpenVLA-family policy on one GPU (see the module docstring); `table()` prints it."""

    family: str
    dtype_bytes: int
    params: int
    trainable: int
    lora: int
    tokens_rollout: int
    """LM sequence of one rollout forward: BOS, image patches, proprio, prompt, and what is decoded."""
    tokens_train: int
    """LM sequence `evaluate` runs per sample."""
    kv_cache_per_sample: int
    activations_per_sample: int
    activations_ckpt_per_sample: int
    """With gradient checkpointing: block inputs kept per sample."""
    ckpt_peak_per_sample: int
    """With gradient checkpointing: one block's activations, recomputed during the backward."""
    inference_peak_per_sample: int
    """No-grad forward (rollout prefill / OFT's one pass): one LM layer's live tensors, an estimate
    (residual, normalised input, SwiGLU's three intermediates and its product; q, k, v are smaller)."""
    gpu_bytes: float = 80 * GB
    reserve_bytes: float = 4 * GB
    """CUDA context, allocator slack, kernels' workspaces."""
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def weights(self) -> int:
        return self.params * self.dtype_bytes

    @property
    def grads(self) -> int:
        return self.trainable * self.dtype_bytes

    @property
    def optimizer(self) -> int:
        """AdamW's two moments per trainable parameter, in the parameter's dtype (torch's AdamW)."""
        return 2 * self.trainable * self.dtype_bytes

    def rollout_bytes(self, batch: int, offload: bool = True) -> float:
        """Weights + KV cache and forward peak of `batch` envs (+ the optimizer state unless offloaded to the host)."""
        per = self.kv_cache_per_sample + self.inference_peak_per_sample
        return self.weights + per * batch + (0 if offload else self.optimizer) + self.reserve_bytes

    def train_bytes(self, minibatch: int, checkpointing: bool = True) -> float:
        """Weights, gradients, optimizer state and the activations of one minibatch."""
        act = (self.activations_ckpt_per_sample + self.ckpt_peak_per_sample) if checkpointing else self.activations_per_sample
        return self.weights + self.grads + self.optimizer + act * minibatch + self.reserve_bytes

    def max_rollout_batch(self, offload: bool = True) -> int:
        free = self.gpu_bytes - self.rollout_bytes(0, offload)
        return max(int(free // (self.kv_cache_per_sample + self.inference_peak_per_sample)), 0)

    def max_minibatch(self, checkpointing: bool = True) -> int:
        per = (self.activations_ckpt_per_sample + self.ckpt_peak_per_sample) if checkpointing else self.activations_per_sample
        return max(int((self.gpu_bytes - self.train_bytes(0, checkpointing)) // per), 0)

    def rows(self) -> list[tuple[str, str]]:
        gb = lambda b: f"{b / GB:.2f} GB"  # noqa: E731
        mb = lambda b: f"{b / 1e6:.1f} MB"  # noqa: E731
        rows = [
            ("parameters", f"{self.params / 1e9:.3f} B ({self.dtype_bytes} bytes each)"),
            ("weights", gb(self.weights)),
            ("trainable (LoRA + value head)", f"{self.trainable / 1e6:.1f} M (LoRA {self.lora / 1e6:.1f} M)"),
            ("gradients", gb(self.grads)),
            ("AdamW state (2 moments)", gb(self.optimizer)),
            ("LM tokens: rollout / training sample", f"{self.tokens_rollout} / {self.tokens_train}"),
            ("KV cache per env (rollout)", mb(self.kv_cache_per_sample) if self.kv_cache_per_sample else "none (one pass)"),
            ("no-grad forward peak per env (estimate)", mb(self.inference_peak_per_sample)),
            ("activations per sample, no checkpointing", mb(self.activations_per_sample)),
            ("activations per sample, checkpointing (kept + recomputed block)",
             f"{mb(self.activations_ckpt_per_sample)} + {mb(self.ckpt_peak_per_sample)}"),
            (f"rollout, optimizer offloaded: envs that fit {self.gpu_bytes / GB:.0f} GB", str(self.max_rollout_batch())),
            (f"training minibatch that fits {self.gpu_bytes / GB:.0f} GB, checkpointing / not",
             f"{self.max_minibatch(True)} / {self.max_minibatch(False)}"),
            ("rollout with 64 envs", gb(self.rollout_bytes(64))),
            ("training, minibatch 32, checkpointing", gb(self.train_bytes(32, True))),
        ]
        return rows

    def table(self) -> str:
        width = max(len(k) for k, _ in self.rows())
        return "\n".join(f"{k:<{width}}  {v}" for k, v in self.rows())


def _tower_activations(tower: nn.Module, tokens: int, r: int, e: int, grad_in: bool) -> tuple[list[int], list[int], bool]:
    """Per-block saved bytes and block inputs of a ViT tower, and whether grad flows out of it."""
    cfg = tower.config
    blocks, inputs = [], []
    for layer in tower.encoder.layer if hasattr(tower.encoder, "layer") else tower.encoder.layers:
        ad = _vit_adapters(layer)
        grad_in_block = grad_in
        grad_in = grad_in or ad.any
        if not grad_in:
            continue
        blocks.append(_vit_block(tokens, cfg.hidden_size, cfg.intermediate_size if hasattr(cfg, "intermediate_size")
                                 and cfg.intermediate_size else int(cfg.hidden_size * cfg.mlp_ratio),
                                 cfg.num_attention_heads, r, e, ad, grad_in_block))
        inputs.append(tokens * cfg.hidden_size * e)
    return blocks, inputs, grad_in


def plan_memory(policy: nn.Module, prompt_tokens: int = 32, gpu_bytes: float = 80 * GB) -> MemoryPlan:
    """The memory plan of an openvla / openvla_oft policy (built on any device, meta included)."""
    from peft.tuners.lora import LoraLayer

    net = policy.net
    e = next(net.parameters()).element_size()
    lora_cfg = getattr(policy, "lora_config", None)
    r = lora_cfg.rank if lora_cfg is not None else 0
    params = sum(p.numel() for p in net.parameters())
    trainable = sum(p.numel() for p in net.parameters() if p.requires_grad)
    lora = sum(p.numel() for n, p in net.named_parameters() if "lora_" in n)
    vision = net.vision_backbone
    dino, siglip = vision.featurizer, vision.fused_featurizer
    patches = vision.num_patches
    cams = len(getattr(policy, "cameras", ("main",)))
    chunk, adim = int(getattr(policy, "action_chunk", 1)), int(policy.action_dim)
    proprio = 1 if getattr(net, "proprio_projector", None) is not None else 0
    prefix = 1 + cams * patches + proprio + prompt_tokens
    oft = policy.family == "openvla_oft"
    tokens_rollout = prefix + (chunk * adim + 1 if oft else adim - 1)
    tokens_train = tokens_rollout
    text = net.language_model.config
    prefix_or_all = tokens_rollout if oft else prefix  # what one no-grad forward runs
    kv = 0 if oft else 2 * text.num_hidden_layers * text.num_key_value_heads * (text.hidden_size // text.num_attention_heads) * (prefix + adim - 1) * e

    # vision towers: DINOv2 (patches + class + registers), SigLIP (patches), once per camera
    d_blocks, d_inputs, d_grad = _tower_activations(dino, patches + 1 + dino.config.num_register_tokens, r, e, False)
    s_blocks, s_inputs, s_grad = _tower_activations(siglip, patches, r, e, False)
    d_blocks, d_inputs = [b * cams for b in d_blocks], [x * cams for x in d_inputs]
    s_blocks, s_inputs = [b * cams for b in s_blocks], [x * cams for x in s_inputs]
    grad_vision = d_grad or s_grad
    proj = net.projector
    proj_ad = [isinstance(m, LoraLayer) for m in (proj.fc1, proj.fc2, proj.fc3)]
    t_img = cams * patches
    projector = 0
    if grad_vision or any(proj_ad):
        projector = t_img * (proj.fc1.out_features + proj.fc2.out_features) * e  # the two GELU inputs
        projector += sum(t_img * (lin.in_features + r) * e for lin, a in zip((proj.fc1, proj.fc2, proj.fc3), proj_ad) if a)
    # language model
    t = tokens_train
    own_mask = not oft  # OFT passes one (N, 1, T, T) mask that every layer shares
    l_blocks = [_llama_block(t, text.hidden_size, text.intermediate_size, text.num_attention_heads, r, e,
                             _llama_adapters(layer), own_mask) for layer in net.language_model.model.layers]
    l_inputs = [t * text.hidden_size * e] * len(l_blocks)
    rope = 2 * t * (text.hidden_size // text.num_attention_heads) * e
    final = t * text.hidden_size * 4 + t * 4 + t * text.hidden_size * e  # final RMSNorm, its output (value head input)
    heads = 2 * chunk * adim * 256 * 4  # log-softmax and its exp over the 256 action ids
    if getattr(net, "value_head", None) is not None:
        heads += 2 * net.value_head.fc1.out_features * e  # the value head's GELU input and output
    fixed = projector + rope + final + heads + (0 if own_mask else t * t * e)
    full = sum(d_blocks) + sum(s_blocks) + sum(l_blocks) + fixed
    kept, peak = _checkpointed(d_blocks + s_blocks + l_blocks, d_inputs + s_inputs + l_inputs)
    head = policy.meta.get("action_head", "tokens") if oft else "tokens"
    notes = () if head == "tokens" else (f"the {head} action head's activations are not counted (one MLP over the slots)",)
    return MemoryPlan(family=f"{policy.family} ({head} head)", notes=notes, dtype_bytes=e, params=params, trainable=trainable, lora=lora,
                      tokens_rollout=tokens_rollout, tokens_train=tokens_train, kv_cache_per_sample=kv,
                      activations_per_sample=full, activations_ckpt_per_sample=kept + fixed,
                      ckpt_peak_per_sample=peak, gpu_bytes=gpu_bytes,
                      inference_peak_per_sample=prefix_or_all * (2 * text.hidden_size + 4 * text.intermediate_size) * e)


__all__ = ["BlockAdapters", "MemoryPlan", "plan_memory", "saved_activation_bytes"]
