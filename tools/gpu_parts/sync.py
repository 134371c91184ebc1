"""Part (f): weight sync of the LoRA trainables of OpenVLA-7B from the actor to a rollout copy on the GPU.

`placement.weight_sync`: after an update the `WeightSender` payload holds only the trainable tensors
(LoRA adapters and the value head; frozen weights never travel again), copied to the host and
checksummed; the `WeightReceiver` verifies the checksum and copies them into the rollout policy.
Both policies are built from the same seed, so the full first payload (15 GB) is taken as sent: both
sides start at version 1. The actor's trainables are perturbed first (as an update would), and the
trainables' checksums of both sides are compared afterwards.
"""

from __future__ import annotations

import time
from typing import Any

import torch

from gpu_parts.common import Setting, build, ms, row


def run(s: Setting) -> dict[str, Any]:
    from placement.weight_sync import WeightReceiver, WeightSender, state_checksum

    actor = build(s, "openvla", lora=True, value_head=True)
    rollout = build(s, "openvla", lora=True, value_head=True).eval()
    sender, receiver = WeightSender(actor), WeightReceiver(rollout)
    sender.version = receiver.version = 1  # the full first payload: both built from the same seed
    names = sender.trainable_names()
    timings: dict[str, list[float]] = {"payload": [], "apply": []}
    for i in range(1 + s.repeats):
        with torch.no_grad():
            for _, p in sorted((n, p) for n, p in actor.named_parameters() if p.requires_grad):
                p.add_(torch.randn_like(p), alpha=1e-3)
        s.sync()
        start = time.perf_counter()
        payload = sender.payload()
        built = time.perf_counter()
        receiver.apply(payload)
        s.sync()
        if i:  # the first round is a warm-up
            timings["payload"].append(built - start)
            timings["apply"].append(time.perf_counter() - built)
    same = state_checksum(actor, names) == state_checksum(rollout, names)
    t_payload, t_apply = min(timings["payload"]), min(timings["apply"])
    nbytes = payload.num_bytes
    total = t_payload + t_apply
    return {"rows": [row(f"weight sync of the LoRA trainables ({len(payload.tensors)} tensors)",
                         f"{ms(total)} for {nbytes / 1e6:.1f} MB",
                         f"payload (to host + checksum) {ms(t_payload)}, apply (verify + to GPU) {ms(t_apply)}; "
                         f"{nbytes / total / 1e9:.2f} GB/s; rollout equals actor: {same}")],
            "bytes": nbytes, "tensors": len(payload.tensors), "payload_s": t_payload, "apply_s": t_apply,
            "all_s": timings, "rollout_equals_actor": same,
            "trainable_params": sum(actor.get_parameter(n).numel() for n in names)}


__all__ = ["run"]
