"""Print the GPU memory plan of a published-size OpenVLA / OpenVLA-OFT policy (built on the meta device:
no memory, no download), from vla_rl/models/openvla/memory_plan.py.

    .venv/bin/python tools/memory_plan.py                       # openvla 7b and the LIBERO OFT 7b
    .venv/bin/python tools/memory_plan.py --prompt-tokens 40 --gpu-gb 141 --out plan.json
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile

import torch

from vla_rl.config.model import LoraConfig, ModelConfig
from vla_rl.models.openvla.memory_plan import plan_memory
from vla_rl.models.registry import build_policy

CASES = {
    "openvla-7b": (dict(family="openvla"), ("main",)),
    "openvla-oft-7b-libero": (dict(family="openvla_oft", action_chunk=8, use_wrist=True, use_proprio=True),
                              ("main", "wrist")),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prompt-tokens", type=int, default=32, help="prompt tokens after BOS (template + instruction)")
    ap.add_argument("--gpu-gb", type=float, default=80.0, help="GPU memory to plan for, GB")
    ap.add_argument("--lora-rank", type=int, default=32)
    ap.add_argument("--out", default=None, help="also write the plans as JSON here")
    args = ap.parse_args()
    plans = {}
    for name, (kw, cameras) in CASES.items():
        cfg = ModelConfig(size="7b", dtype="bfloat16", gradient_checkpointing=True,
                          lora=LoraConfig(enabled=True, rank=args.lora_rank), **kw)
        with torch.device("meta"):
            policy = build_policy(cfg, 7, cameras, 8, seed=0)
        plan = plan_memory(policy, prompt_tokens=args.prompt_tokens, gpu_bytes=args.gpu_gb * 1e9)
        plans[name] = {k: v for k, v in plan.rows()}
        print(f"== {name}: {plan.family}, prompt {args.prompt_tokens} tokens, LoRA rank {args.lora_rank}")
        print(plan.table())
        for note in plan.notes:
            print(f"note: {note}")
    if args.out:
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(args.out)) or ".")
        with os.fdopen(fd, "w") as f:
            json.dump(plans, f, indent=2)
        os.replace(tmp, args.out)
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
