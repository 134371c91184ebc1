"""Part (b): OpenVLA-OFT-7B chunk decoding, actions per second.

The LIBERO configuration of OFT (main + wrist camera, proprio, chunks of 8 x 7 action tokens decoded
in one parallel pass): `act()` end to end (image preprocessing, prefill, the chunk's slots, token
choice and the codec) at each batch size, actions/s = batch x chunk / time.
"""

from __future__ import annotations

from typing import Any

from gpu_parts.common import Setting, build, make_obs, ms, row

CAMERAS = ("main", "wrist")


def run(s: Setting) -> dict[str, Any]:
    chunk = 2 if s.smoke else 8
    policy = build(s, "openvla_oft", cameras=CAMERAS, action_chunk=chunk, use_wrist=True, use_proprio=True).eval()
    rows, data = [], []
    for n in s.batches:
        obs = make_obs(n, policy.image_size, CAMERAS)
        t = s.timed(lambda: policy.act(obs, mode="sample"))
        rate = n * chunk / t
        data.append({"batch": n, "act_s": t, "actions_per_s": rate, "chunk": chunk})
        rows.append(row(f"OFT act(), batch {n}, chunk {chunk}", f"{rate:,.0f} actions/s", f"{ms(t)} per chunk"))
    return {"rows": rows, "batches": data}


__all__ = ["run"]
