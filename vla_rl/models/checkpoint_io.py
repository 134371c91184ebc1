"""Reading and writing a policy directory in the Hugging Face layout: config.json, model.safetensors
(or sharded model-0000x-of-0000y.safetensors with an index, as published checkpoints are), and the
tokenizer files. Family-specific key mapping happens in the families, not here."""

from __future__ import annotations

import json
import os
from typing import Any

import torch
from safetensors.torch import load_file, save_file

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
INDEX_NAME = "model.safetensors.index.json"


def write_config(path: str, config: dict[str, Any]) -> None:
    os.makedirs(path, exist_ok=True)
    with open(os.path.join(path, CONFIG_NAME), "w") as f:
        json.dump(config, f, indent=2, sort_keys=False)
        f.write("\n")


def read_config(path: str) -> dict[str, Any]:
    file = os.path.join(path, CONFIG_NAME)
    if not os.path.isfile(file):
        raise FileNotFoundError(f"{path} has no {CONFIG_NAME}; point model.pretrained at a directory written by save_pretrained")
    with open(file) as f:
        return json.load(f)


def write_weights(path: str, state: dict[str, torch.Tensor]) -> None:
    """One safetensors file (tensors made contiguous and unshared)."""
    os.makedirs(path, exist_ok=True)
    save_file({k: v.detach().contiguous().clone() for k, v in state.items()}, os.path.join(path, WEIGHTS_NAME),
              metadata={"format": "pt"})


def read_weights(path: str) -> dict[str, torch.Tensor]:
    """All tensors of `model.safetensors`, or of every shard named in `model.safetensors.index.json`."""
    single = os.path.join(path, WEIGHTS_NAME)
    if os.path.isfile(single):
        return load_file(single)
    index = os.path.join(path, INDEX_NAME)
    if os.path.isfile(index):
        with open(index) as f:
            shards = sorted(set(json.load(f)["weight_map"].values()))
        state: dict[str, torch.Tensor] = {}
        for shard in shards:
            state.update(load_file(os.path.join(path, shard)))
        return state
    raise FileNotFoundError(f"{path} has neither {WEIGHTS_NAME} nor {INDEX_NAME}")


__all__ = ["CONFIG_NAME", "WEIGHTS_NAME", "read_config", "read_weights", "write_config", "write_weights"]
