"""Pure rotation helpers used to build proprio vectors (numpy, no simulator imports)."""

from __future__ import annotations

import numpy as np


def quat_xyzw_to_axis_angle(quat: np.ndarray) -> np.ndarray:
    """Axis-angle (3,) of a unit quaternion (x, y, z, w), robosuite's convention.

    The angle is 2*acos(w), in [0, 2*pi] (no sign canonicalisation), exactly as robosuite's
    `quat2axisangle`, which the LIBERO reference evaluation uses for its 8-d proprio. A rotation of
    ~0 gives zeros.
    """
    q = np.asarray(quat, dtype=np.float64)
    w = float(np.clip(q[3], -1.0, 1.0))
    den = np.sqrt(1.0 - w * w)
    if den < 1e-9:
        return np.zeros(3, dtype=np.float32)
    return (q[:3] * 2.0 * np.arccos(w) / den).astype(np.float32)


def quat_wxyz_to_xyzw(quat: np.ndarray) -> np.ndarray:
    """Reorder a (w, x, y, z) quaternion (SAPIEN) to (x, y, z, w) (robosuite, scipy)."""
    q = np.asarray(quat)
    return np.concatenate([q[1:4], q[:1]])
