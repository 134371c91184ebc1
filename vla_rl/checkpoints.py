"""Atomic checkpoints: the policy in its Hugging Face layout plus the trainer state for exact resume.

Layout of `<run>/checkpoints/iter-000010/`:
    policy/             the policy's `save_pretrained` output (loadable on its own)
    trainer_state.pt    optimizer state, RNG streams (python, numpy, torch), iteration, env reset cursor
    config.yaml         the resolved run config
    serve_schema.json   (when given) how `vla-rl serve` maps request keys to observations

A checkpoint is written into a temporary sibling folder and renamed into place only when complete,
so an interrupted save never leaves a half-written checkpoint behind; `latest` names the newest.
"""

from __future__ import annotations

import os
import random
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

LATEST = "latest"


@dataclass
class TrainerState:
    iteration: int
    reset_cursor: int
    optimizer: dict[str, Any]
    rng: dict[str, Any]
    extra: dict[str, Any]


def capture_rng() -> dict[str, Any]:
    return {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}


def restore_rng(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])


def write_text_atomic(path: Path, text: str) -> None:
    """Write `text` to `path` through a temporary sibling and a rename: readers see the old file or the new one."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


def save_checkpoint(root: Path, policy: Any, state: TrainerState, config_yaml: str,
                    extra_files: dict[str, str] | None = None) -> Path:
    """Write `root/iter-XXXXXX` atomically and point `root/latest` at it. Returns its path.

    `extra_files` maps file names to text written beside the config (e.g. serve_schema.json).
    """
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"iter-{state.iteration:06d}"
    tmp = root / f".{final.name}.tmp-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    try:
        tmp.mkdir()
        policy.save_pretrained(str(tmp / "policy"))
        torch.save(state.__dict__, tmp / "trainer_state.pt")
        (tmp / "config.yaml").write_text(config_yaml)
        for name, text in (extra_files or {}).items():
            (tmp / name).write_text(text)
        if final.exists():
            old = root / f".{final.name}.old-{os.getpid()}"
            os.replace(final, old)
            os.replace(tmp, final)
            shutil.rmtree(old)
        else:
            os.replace(tmp, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    write_text_atomic(root / LATEST, final.name + "\n")
    return final


def resolve_checkpoint(path: str | Path) -> Path:
    """A checkpoint folder from a checkpoint path, a checkpoints root, or a run folder."""
    path = Path(path)
    for root in (path, path / "checkpoints"):
        if (root / LATEST).is_file():
            return root / (root / LATEST).read_text().strip()
    if (path / "trainer_state.pt").is_file() or (path / "policy").is_dir():
        return path
    raise FileNotFoundError(
        f"{path} is not a checkpoint: expected a folder with trainer_state.pt and policy/, "
        "a checkpoints/ folder with a `latest` file, or a run folder containing one"
    )


def load_trainer_state(checkpoint: Path) -> TrainerState:
    data = torch.load(checkpoint / "trainer_state.pt", weights_only=False)
    return TrainerState(**data)
