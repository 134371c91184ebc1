"""Action codec: 256-bin action tokens <-> normalised actions <-> environment actions.

The mapping follows OpenVLA exactly so that published checkpoints decode the same way:

* a normalised action value x in [-1, 1] (clipped first) is digitised against 256 evenly spaced
  edges over [-1, 1] (`np.digitize`, right=False), giving a bin index 1..256;
* the token id is `vocab_size - index`, i.e. the last 256 ids of the tokenizer's base vocabulary
  (`vocab_size` is the tokenizer's base size, 32000 for Llama-2, not the padded embedding size);
* a token id decodes to one of the 255 bin centres: `centres[clip(vocab_size - id - 1, 0, 254)]`;
* un-normalisation uses the dataset's q01/q99 statistics: `0.5 (x + 1) (q99 - q01) + q01` where
  the mask is true, x unchanged where it is false (OpenVLA leaves the gripper un-normalised);
* finally the gripper dimension is converted to the environment's convention.

Inside a policy, the distribution over the 256 action ids is indexed by the "restricted index"
j = id - (vocab_size - 256) in 0..255: j = 0 is bin index 256 (x = +1), j = 255 is index 1 (x = -1).

Pure functions carry the math; `ActionCodec` bundles one dataset's statistics and the gripper
conventions. Nothing here imports a simulator: conventions arrive as plain strings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

N_BINS = 256
GRIPPER_CONVENTIONS = ("open_positive", "close_positive")
GRIPPER_RANGES = ("symmetric", "unit")


# ----------------------------------------------------------------------------------------------
# Pure math
# ----------------------------------------------------------------------------------------------


def bin_edges(n_bins: int = N_BINS, low: float = -1.0, high: float = 1.0) -> np.ndarray:
    """The `n_bins` evenly spaced edges over [low, high] (OpenVLA's `bins`)."""
    return np.linspace(low, high, n_bins)


def bin_centres(n_bins: int = N_BINS, low: float = -1.0, high: float = 1.0) -> np.ndarray:
    """The `n_bins - 1` centres between consecutive edges (OpenVLA's `bin_centers`)."""
    edges = bin_edges(n_bins, low, high)
    return (edges[:-1] + edges[1:]) / 2.0


def normalised_to_tokens(x: np.ndarray, vocab_size: int, n_bins: int = N_BINS) -> np.ndarray:
    """Token ids (int64) of normalised actions: clip to [-1, 1], digitise (index 1..n_bins), id = vocab - index."""
    clipped = np.clip(np.asarray(x, dtype=np.float64), -1.0, 1.0)
    index = np.digitize(clipped, bin_edges(n_bins))
    return (vocab_size - index).astype(np.int64)


def tokens_to_normalised(token_ids: np.ndarray, vocab_size: int, n_bins: int = N_BINS) -> np.ndarray:
    """Normalised actions (float64) of token ids: the bin centre, index clipped to the last centre."""
    centres = bin_centres(n_bins)
    index = vocab_size - np.asarray(token_ids, dtype=np.int64)
    return centres[np.clip(index - 1, 0, centres.shape[0] - 1)]


def unnormalise(x: np.ndarray, q01: np.ndarray, q99: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Map [-1, 1] to [q01, q99] on the dims where `mask` is true; other dims pass through."""
    q01, q99 = np.asarray(q01, dtype=np.float64), np.asarray(q99, dtype=np.float64)
    return np.where(np.asarray(mask, dtype=bool), 0.5 * (x + 1.0) * (q99 - q01) + q01, x)


def normalise(a: np.ndarray, q01: np.ndarray, q99: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Inverse of `unnormalise`: [q01, q99] -> [-1, 1] on masked dims (clipped), others pass through."""
    q01, q99 = np.asarray(q01, dtype=np.float64), np.asarray(q99, dtype=np.float64)
    span = np.where(q99 - q01 == 0, 1.0, q99 - q01)
    scaled = np.clip(2.0 * (np.asarray(a, dtype=np.float64) - q01) / span - 1.0, -1.0, 1.0)
    return np.where(np.asarray(mask, dtype=bool), scaled, a)


def gripper_to_env(
    g: np.ndarray, policy_range: str, policy_convention: str | None, env_convention: str, binarize: bool
) -> np.ndarray:
    """Convert a policy's gripper value to the environment's +-1 convention.

    `policy_range` "unit" means the policy emits [0, 1] (mapped to [-1, 1] by 2g - 1), "symmetric"
    means [-1, 1]. `policy_convention` None means the policy already speaks the env's convention;
    otherwise the sign flips when the two differ. `binarize` snaps to the sign (OpenVLA's LIBERO
    evaluation does this; a value of exactly 0 stays 0, as `np.sign` does).
    """
    s = 2.0 * g - 1.0 if policy_range == "unit" else np.asarray(g, dtype=np.float64)
    if policy_convention is not None and policy_convention != env_convention:
        s = -s
    return np.sign(s) if binarize else s


def gripper_from_env(a: np.ndarray, policy_range: str, policy_convention: str | None, env_convention: str) -> np.ndarray:
    """Inverse of `gripper_to_env` (without binarisation): env gripper value -> policy gripper value."""
    s = np.asarray(a, dtype=np.float64)
    if policy_convention is not None and policy_convention != env_convention:
        s = -s
    return (s + 1.0) / 2.0 if policy_range == "unit" else s


# ----------------------------------------------------------------------------------------------
# Norm statistics (OpenVLA's `norm_stats` layout)
# ----------------------------------------------------------------------------------------------


def identity_norm_stats(action_dim: int) -> dict[str, Any]:
    """Statistics that leave a [-1, 1] action space unchanged (e.g. ManiSkill pd_ee_delta_pose)."""
    return {
        "action": {
            "q01": [-1.0] * action_dim,
            "q99": [1.0] * action_dim,
            "mask": [True] * action_dim,
        }
    }


def select_norm_stats(norm_stats: dict[str, Any], unnorm_key: str | None) -> tuple[str, dict[str, Any]]:
    """Pick one dataset's action statistics from an OpenVLA `norm_stats` dict.

    With `unnorm_key` None the dict must hold exactly one dataset (as OpenVLA requires).
    """
    if not norm_stats:
        raise ValueError("norm_stats is empty: pass identity_norm_stats(action_dim) for a [-1, 1] action space")
    if unnorm_key is None:
        if len(norm_stats) != 1:
            raise ValueError(
                f"the checkpoint has statistics for {len(norm_stats)} datasets; set model.unnorm_key to one of "
                f"{sorted(norm_stats)}"
            )
        unnorm_key = next(iter(norm_stats))
    if unnorm_key not in norm_stats:
        raise ValueError(f"unnorm_key {unnorm_key!r} is not in the checkpoint's norm_stats; choose one of {sorted(norm_stats)}")
    stats = norm_stats[unnorm_key]["action"]
    for key in ("q01", "q99"):
        if key not in stats:
            raise ValueError(f"norm_stats[{unnorm_key!r}]['action'] has no {key!r}; it needs q01, q99 (and optionally mask)")
    return unnorm_key, stats


# ----------------------------------------------------------------------------------------------
# The codec object a policy holds
# ----------------------------------------------------------------------------------------------


@dataclass
class ActionCodec:
    """Tokens <-> environment actions for one dataset's statistics and one environment's gripper."""

    vocab_size: int
    """Base vocabulary size of the tokenizer; action ids are [vocab_size - 256, vocab_size)."""
    q01: np.ndarray
    """(A,) lower statistic per action dim."""
    q99: np.ndarray
    """(A,) upper statistic per action dim."""
    mask: np.ndarray
    """(A,) bool: dims that are un-normalised with q01/q99 (false: passed through)."""
    policy_gripper_range: str = "symmetric"
    """Range of the policy's gripper output: "symmetric" ([-1, 1]) or "unit" ([0, 1])."""
    policy_gripper_convention: str | None = None
    """"open_positive" / "close_positive", or None: the policy already uses the env's convention."""
    env_gripper_convention: str = "close_positive"
    """The environment's reading of the last action dim (`EnvSpec.gripper_convention`)."""
    binarize_gripper: bool = False
    """Snap the gripper to +-1 after conversion (OpenVLA's LIBERO evaluation does)."""
    n_bins: int = N_BINS
    """Number of bin edges (256 for OpenVLA)."""
    extras: dict[str, Any] = field(default_factory=dict)
    """Free-form provenance (which unnorm_key was chosen)."""

    def __post_init__(self) -> None:
        self.q01 = np.asarray(self.q01, dtype=np.float64)
        self.q99 = np.asarray(self.q99, dtype=np.float64)
        self.mask = np.asarray(self.mask, dtype=bool)
        if not (self.q01.shape == self.q99.shape == self.mask.shape and self.q01.ndim == 1):
            raise ValueError(f"q01 {self.q01.shape}, q99 {self.q99.shape} and mask {self.mask.shape} must be equal 1-D shapes")
        if self.policy_gripper_range not in GRIPPER_RANGES:
            raise ValueError(f"policy_gripper_range={self.policy_gripper_range!r}; use one of {GRIPPER_RANGES}")
        for name in ("policy_gripper_convention", "env_gripper_convention"):
            value = getattr(self, name)
            if value is not None and value not in GRIPPER_CONVENTIONS:
                raise ValueError(f"{name}={value!r}; use one of {GRIPPER_CONVENTIONS}")
        if self.vocab_size < self.n_bins:
            raise ValueError(f"vocab_size {self.vocab_size} is smaller than the {self.n_bins} action ids it must hold")

    @classmethod
    def from_norm_stats(
        cls, vocab_size: int, norm_stats: dict[str, Any], unnorm_key: str | None = None, **gripper: Any
    ) -> "ActionCodec":
        """Build from an OpenVLA-style `norm_stats` dict (mask defaults to all true, as in OpenVLA)."""
        key, stats = select_norm_stats(norm_stats, unnorm_key)
        mask = stats.get("mask", [True] * len(stats["q01"]))
        return cls(vocab_size, stats["q01"], stats["q99"], mask, extras={"unnorm_key": key}, **gripper)

    @property
    def action_dim(self) -> int:
        return int(self.q01.shape[0])

    @property
    def first_action_id(self) -> int:
        """Smallest action token id; the restricted index is `id - first_action_id`."""
        return self.vocab_size - self.n_bins

    def decode(self, token_ids: np.ndarray) -> np.ndarray:
        """Token ids (..., A) -> float32 environment actions (..., A)."""
        return self.to_env(tokens_to_normalised(token_ids, self.vocab_size, self.n_bins))

    def encode(self, actions: np.ndarray) -> np.ndarray:
        """Environment actions (..., A) -> token ids (..., A) (for demonstrations / SFT)."""
        return normalised_to_tokens(self.from_env(actions), self.vocab_size, self.n_bins)

    def to_env(self, x: np.ndarray) -> np.ndarray:
        """Normalised actions (..., A) -> float32 environment actions: un-normalised (not clipped, as OFT's
        continuous head is not), then the gripper converted. `decode` is this after the bin centres."""
        a = unnormalise(np.asarray(x, dtype=np.float64), self.q01, self.q99, self.mask)
        a[..., -1] = gripper_to_env(
            a[..., -1], self.policy_gripper_range, self.policy_gripper_convention, self.env_gripper_convention,
            self.binarize_gripper,
        )
        return a.astype(np.float32)

    def from_env(self, actions: np.ndarray) -> np.ndarray:
        """Environment actions (..., A) -> normalised actions (masked dims clipped to [-1, 1]); `encode`
        digitises this. The regression target of a continuous head (SFT)."""
        a = np.array(actions, dtype=np.float64, copy=True)
        a[..., -1] = gripper_from_env(a[..., -1], self.policy_gripper_range, self.policy_gripper_convention,
                                      self.env_gripper_convention)
        return normalise(a, self.q01, self.q99, self.mask)

    def restricted_to_ids(self, restricted: np.ndarray) -> np.ndarray:
        """Restricted index 0..255 -> vocabulary token id."""
        return np.asarray(restricted, dtype=np.int64) + self.first_action_id

    def ids_to_restricted(self, token_ids: np.ndarray) -> np.ndarray:
        """Vocabulary token id -> restricted index 0..255."""
        return np.asarray(token_ids, dtype=np.int64) - self.first_action_id


__all__ = [
    "N_BINS",
    "ActionCodec",
    "bin_centres",
    "bin_edges",
    "gripper_from_env",
    "gripper_to_env",
    "identity_norm_stats",
    "normalise",
    "normalised_to_tokens",
    "select_norm_stats",
    "tokens_to_normalised",
    "unnormalise",
]
