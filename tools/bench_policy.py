"""Benchmark: action decoding throughput of our KV-cache loop vs transformers `generate`.

Both decode the 7 action tokens of the OpenVLA-style policy from the same prefix embeddings
(image + prompt) of the same model, sampling from the same 256 action ids (generate is restricted
with a logits processor). Also times the full `act()` (vision + prompt + decode + codec) and a
PPO-style `evaluate()` + backward on a minibatch. Prints a table and writes JSON.

    .venv/bin/python tools/bench_policy.py --size tiny --batches 1 8 64 --out bench_policy.json
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import numpy as np
import torch
from transformers import LogitsProcessor, LogitsProcessorList

from vla_rl.config.model import ModelConfig
from vla_rl.models.openvla.decoding import decode_with_cache
from vla_rl.models.registry import build_policy
from vla_rl.models.tokenizer import trim_padding

INSTRUCTIONS = ["pick up the red cube", "push the cube to the goal region", "stack the cube", "lift the peg upright"]


class RestrictToActionIds(LogitsProcessor):
    """Mask every id outside [first, first + 256) to -inf, so generate samples the policy's distribution."""

    def __init__(self, first: int) -> None:
        self.first = first

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        out = torch.full_like(scores, float("-inf"))
        out[:, self.first:self.first + 256] = scores[:, self.first:self.first + 256]
        return out


def make_obs(n: int, size: int) -> dict:
    rng = np.random.default_rng(0)
    return {"images": {"main": rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8)},
            "proprio": np.zeros((n, 9), np.float32), "instruction": [INSTRUCTIONS[i % 4] for i in range(n)]}


def timed(fn, repeats: int) -> float:
    """Median seconds of `repeats` calls after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="tiny", help="openvla size preset")
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 8, 64], help="batch sizes (envs)")
    ap.add_argument("--repeats", type=int, default=5, help="timed repeats per measurement (median reported)")
    ap.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    ap.add_argument("--minibatch", type=int, default=32, help="minibatch for the evaluate+backward timing")
    ap.add_argument("--lm-vocab", type=int, default=32064,
                    help="pad the LM embedding/head to this many ids (32064 = OpenVLA's Llama-2 size; 0 keeps the "
                         "tiny tokenizer's 576). Generate pays for the full vocabulary at every step; we do not.")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--out", default="bench_policy.json", help="where to write the JSON results")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    policy = build_policy(ModelConfig(family="openvla", size=args.size), 7, ("main",), 9, seed=0).to(args.device)
    net, lm = policy.net, policy.net.language_model
    if args.lm_vocab:
        lm.resize_token_embeddings(args.lm_vocab, mean_resizing=False)
    first = net.first_action_id
    procs = LogitsProcessorList([RestrictToActionIds(first)])
    n_params = sum(p.numel() for p in policy.parameters())
    rows = []
    for n in args.batches:
        obs = make_obs(n, policy.image_size)
        with torch.no_grad():
            inputs = policy.prepare(obs)
            embeds, mask = net.prefix(*trim_padding(inputs["input_ids"], inputs["attention_mask"]), inputs["images"])

            def ours():
                decode_with_cache(net, embeds, mask, 7, "sample", 1.0)

            def hf_generate():
                lm.generate(inputs_embeds=embeds, attention_mask=mask, max_new_tokens=7, min_new_tokens=7,
                            do_sample=True, temperature=1.0, top_k=0, top_p=1.0, logits_processor=procs,
                            pad_token_id=lm.config.pad_token_id, eos_token_id=None)

            t_ours, t_gen = timed(ours, args.repeats), timed(hf_generate, args.repeats)
            t_act = timed(lambda: policy.act(obs), args.repeats)
            greedy_ours = decode_with_cache(net, embeds, mask, 7, "greedy", 1.0)[0] + first
            greedy_gen = lm.generate(inputs_embeds=embeds, attention_mask=mask, max_new_tokens=7, min_new_tokens=7,
                                     do_sample=False, logits_processor=procs, pad_token_id=lm.config.pad_token_id,
                                     eos_token_id=None)
        rows.append({"batch": n, "ours_s": t_ours, "generate_s": t_gen, "act_s": t_act,
                     "ours_actions_per_s": n / t_ours, "generate_actions_per_s": n / t_gen,
                     "act_actions_per_s": n / t_act, "speedup": t_gen / t_ours,
                     "greedy_tokens_equal": bool(torch.equal(greedy_ours, greedy_gen[:, -7:]))})

    mb = make_obs(args.minibatch, policy.image_size)
    fi = policy.act(mb).forward_inputs

    def train_step():
        ev = policy.evaluate(fi)
        (-(ev.logprobs.sum()) + ev.values.square().sum()).backward()

    t_train = timed(train_step, args.repeats)
    print(f"openvla size={args.size} params={n_params / 1e6:.2f}M lm_vocab={lm.config.vocab_size} device={args.device} "
          f"threads={args.threads}")
    print(f"{'batch':>6} {'ours act/s':>11} {'generate act/s':>15} {'speedup':>8} {'act() act/s':>12} {'greedy equal':>13}")
    for r in rows:
        print(f"{r['batch']:>6} {r['ours_actions_per_s']:>11.1f} {r['generate_actions_per_s']:>15.1f} {r['speedup']:>7.2f}x "
              f"{r['act_actions_per_s']:>12.1f} {str(r['greedy_tokens_equal']):>13}")
    print(f"evaluate+backward, minibatch {args.minibatch}: {t_train * 1e3:.1f} ms")
    result = {"size": args.size, "params": n_params, "lm_vocab": lm.config.vocab_size, "device": args.device, "threads": args.threads,
              "machine": platform.processor() or platform.machine(), "torch": torch.__version__, "rows": rows,
              "evaluate_backward_s": t_train, "minibatch": args.minibatch}
    with open(args.out, "w") as f:
        json.dump(result, f, indent=2)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
