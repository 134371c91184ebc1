"""`model.family: pi0`: a flow-matching VLA (PaliGemma-style prefix + action expert) (vla_rl/models/pi0/).

The keys of the denoising chain `act` samples and `evaluate` scores: how many Euler steps, and which
of the two Gaussian formulations of each step (docs/models.md, pi0):

- `flow_sde`: the ODE step turned into an SDE with the same marginals; each step's std is
  `noise_level * sqrt(t / (1 - t)) * sqrt(dt)` (fixed: it has no parameters to learn);
- `flow_noise`: the ODE step's mean plus a learned noise head whose std lies in
  [`noise_std_min`, `noise_std_max`].
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from vla_rl.config.core import check
from vla_rl.config.families._inputs import ChunkInputsConfig
from vla_rl.config.model import ModelConfig

NOISE_METHODS = ("flow_sde", "flow_noise")


@ModelConfig.register("pi0")
@dataclass
class Pi0Config(ChunkInputsConfig, ModelConfig):
    """pi0 / pi0.5: the shared keys, the chunk, proprio and wrist inputs, and the denoising chain."""

    family: str = "pi0"
    max_prompt_tokens: int = 128
    """Fixed length prompts are padded to (all-pad columns are trimmed before compute). The tiny byte-level
    tokenizer spends one token per character; openpi's SentencePiece prompts fit 48 (pi0) / 200 (pi0.5)."""
    denoise_steps: int = 10
    """Euler steps from noise (t = 1) to the action chunk (t = 0); openpi samples with 10."""
    noise_method: Literal["flow_sde", "flow_noise"] = "flow_sde"
    """Gaussian per denoising step: "flow_sde" (SDE with a noise level) or "flow_noise" (a learned noise head)."""
    noise_level: float = 0.5
    """flow_sde: the SDE's noise scale a in sigma_t = a sqrt(t / (1 - t)) (RLinf's default 0.5)."""
    noise_std_min: float = 0.08
    """flow_noise: smallest std the noise head can output (RLinf's range [0.08, 0.16])."""
    noise_std_max: float = 0.16
    """flow_noise: largest std the noise head can output."""

    def __post_init__(self) -> None:
        super().__post_init__()
        check(self.max_prompt_tokens >= 8, f"model.max_prompt_tokens={self.max_prompt_tokens} must be >= 8")
        check(self.denoise_steps >= 1, f"model.denoise_steps={self.denoise_steps} must be >= 1")
        if self.noise_method == "flow_sde":
            check(self.noise_level > 0, f"model.noise_level={self.noise_level} must be > 0 (the SDE's noise scale)")
            check((self.noise_std_min, self.noise_std_max) == (0.08, 0.16),
                  "model.noise_std_min / noise_std_max bound the learned noise head of model.noise_method=flow_noise; "
                  "with flow_sde they cannot act: remove them, or set model.noise_method=flow_noise")
        else:
            check(self.noise_level == 0.5, "model.noise_level scales the SDE of model.noise_method=flow_sde; with "
                  "flow_noise the noise head sets the std: remove it, or set model.noise_method=flow_sde")
            check(0 < self.noise_std_min < self.noise_std_max,
                  f"model.noise_std_min={self.noise_std_min} and noise_std_max={self.noise_std_max} must satisfy "
                  "0 < min < max")


__all__ = ["NOISE_METHODS", "Pi0Config"]
