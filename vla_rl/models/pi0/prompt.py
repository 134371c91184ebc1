"""pi0's prompts: the instruction and a newline (openpi's pi0), or for pi0.5 the task and the state as text.

pi0.5 reads the proprio state as 256-bin integers in the prompt (openpi: `Task: ..., State: ...;\\n
Action: `), the state first mapped to [-1, 1] (q01/q99 statistics when the checkpoint has them) and
clipped. Rows are `[BOS][pads][prompt]` of a fixed length (`vla_rl.models.tokenizer.PromptBatcher`).
"""

from __future__ import annotations

import numpy as np
import torch

from vla_rl.models.tokenizer import PromptBatcher

PI0_TEMPLATE = "{instruction}\n"
STATE_BINS = 256


def state_text(state: np.ndarray) -> str:
    """A state in [-1, 1] as space-separated bin indices 0..255 (openpi's pi0.5 discretisation)."""
    edges = np.linspace(-1.0, 1.0, STATE_BINS + 1)[:-1]
    bins = np.digitize(np.clip(state, -1.0, 1.0), edges) - 1
    return " ".join(str(int(b)) for b in bins)


class Pi0Prompts:
    """Instructions (+ state for pi0.5) -> (input_ids, attention_mask) (N, max_len) int64."""

    def __init__(self, tokenizer, max_len: int, pi05: bool) -> None:
        self.pi05 = pi05
        self.batcher = PromptBatcher(tokenizer, max_len, template="{instruction}" if pi05 else PI0_TEMPLATE)

    def __call__(self, instructions: list[str], state: np.ndarray | None,
                 device: torch.device | str) -> tuple[torch.Tensor, torch.Tensor]:
        if self.pi05:
            texts = [f"Task: {text.strip()}, " + (f"State: {state_text(state[i])};\n" if state is not None else "")
                     + "Action: " for i, text in enumerate(instructions)]
            return self.batcher(texts, device)
        return self.batcher(instructions, device)


__all__ = ["PI0_TEMPLATE", "Pi0Prompts", "state_text"]
