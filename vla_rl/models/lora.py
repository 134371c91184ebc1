"""LoRA adapters (through peft) on any policy network, plus merging and checkpoint helpers.

Adapters are injected in place (`peft.inject_adapter_in_model`), so the policy's code paths do not
change. Targets are module-name suffixes from `LoraConfig.target_modules` ("all-linear": every
linear layer); the value head, proprio projector, OFT's L1 action head (and its sampling scale), pi0's
action/state/time projections and noise head, and the LM output head never get adapters: all but the
last stay fully trainable (as OFT trains its head), the LM head stays frozen (action logits read a slice of its weight). Everything else is frozen while adapters are on.

On disk, a policy with adapters keeps its base weights under their normal names in
model.safetensors and the adapters in lora_adapter/ (adapter_model.safetensors + lora_config.json);
`merge_lora` folds them in for export.
"""

from __future__ import annotations

import dataclasses
import json
import os

import torch
from peft import LoraConfig as PeftLoraConfig
from peft import inject_adapter_in_model
from peft.tuners.lora import LoraLayer
from safetensors.torch import load_file, save_file
from torch import nn

from vla_rl.config.model import LoraConfig

ADAPTER_DIR = "lora_adapter"
ALWAYS_TRAINABLE = ("value_head", "proprio_projector", "action_head", "action_scale",
                    # pi0's small heads around the action expert (openpi trains them with the expert)
                    "action_in_proj", "action_out_proj", "state_proj", "action_time_mlp_in", "action_time_mlp_out",
                    "time_mlp_in", "time_mlp_out", "noise_head")
NEVER_ADAPTED = ALWAYS_TRAINABLE + ("lm_head",)


def lora_targets(net: nn.Module, target_modules: tuple[str, ...]) -> list[str]:
    """Full names of the linear layers that get adapters."""
    names = []
    for name, module in net.named_modules():
        if not isinstance(module, nn.Linear) or any(part in NEVER_ADAPTED for part in name.split(".")):
            continue
        if "all-linear" in target_modules or any(name == t or name.endswith("." + t) for t in target_modules):
            names.append(name)
    return names


def has_lora(net: nn.Module) -> bool:
    return any(isinstance(m, LoraLayer) for m in net.modules())


def apply_lora(policy: nn.Module, cfg: LoraConfig) -> nn.Module:
    """Inject adapters into `policy.net` in place; freeze the rest except the value head / proprio projector."""
    net = policy.net
    if has_lora(net):
        raise ValueError("this policy already has LoRA adapters; merge them (merge_lora) before adding new ones")
    targets = lora_targets(net, tuple(cfg.target_modules))
    if not targets:
        raise ValueError(f"model.lora.target_modules={list(cfg.target_modules)} match no linear layer of the "
                         f"{getattr(policy, 'family', type(policy).__name__)} policy; use e.g. all-linear")
    peft_cfg = PeftLoraConfig(r=cfg.rank, lora_alpha=cfg.alpha, lora_dropout=cfg.dropout, target_modules=targets,
                              bias="none")
    inject_adapter_in_model(peft_cfg, net)
    for name, param in net.named_parameters():
        param.requires_grad = "lora_" in name or any(part in ALWAYS_TRAINABLE for part in name.split("."))
    policy.lora_config = cfg
    return policy


def merge_lora(policy: nn.Module) -> nn.Module:
    """Fold the adapters into the base weights and remove them (in place); everything trainable again."""
    net = policy.net
    for name, module in list(net.named_modules()):
        if isinstance(module, LoraLayer):
            module.merge()
            parent_name, _, child = name.rpartition(".")
            setattr(net.get_submodule(parent_name) if parent_name else net, child, module.get_base_layer())
    for param in net.parameters():
        param.requires_grad = True
    policy.lora_config = None
    return policy


def split_state(net: nn.Module) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """(base weights under their plain names, adapter weights) of a network with or without adapters."""
    base, adapter = {}, {}
    for key, value in net.state_dict().items():
        if "lora_" in key:
            adapter[key] = value
        else:
            base[key.replace(".base_layer.", ".")] = value
    return base, adapter


def save_adapter(policy: nn.Module, path: str) -> None:
    """Write lora_adapter/ when the policy has adapters (no-op otherwise)."""
    _, adapter = split_state(policy.net)
    if not adapter:
        return
    out = os.path.join(path, ADAPTER_DIR)
    os.makedirs(out, exist_ok=True)
    save_file({k: v.detach().contiguous() for k, v in adapter.items()}, os.path.join(out, "adapter_model.safetensors"))
    with open(os.path.join(out, "lora_config.json"), "w") as f:
        json.dump(dataclasses.asdict(policy.lora_config), f, indent=2)


def load_adapter(policy: nn.Module, path: str) -> nn.Module:
    """Re-inject and load lora_adapter/ when the directory has one (no-op otherwise)."""
    folder = os.path.join(path, ADAPTER_DIR)
    if not os.path.isdir(folder):
        return policy
    with open(os.path.join(folder, "lora_config.json")) as f:
        raw = json.load(f)
    apply_lora(policy, LoraConfig(**{**raw, "target_modules": tuple(raw["target_modules"])}))
    weights = load_file(os.path.join(folder, "adapter_model.safetensors"))
    missing, unexpected = policy.net.load_state_dict(weights, strict=False)
    lora_missing = [k for k in missing if "lora_" in k]
    if lora_missing or unexpected:
        raise ValueError(f"{folder} does not fit this policy: missing {lora_missing[:5]}, unexpected {unexpected[:5]}")
    return policy


__all__ = ["apply_lora", "has_lora", "load_adapter", "lora_targets", "merge_lora", "save_adapter", "split_state"]
