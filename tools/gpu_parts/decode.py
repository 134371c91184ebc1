"""Part (a): OpenVLA-7B action decoding per token step at batch 1, 8, 64, against the bandwidth floor,
and our KV-cache decoder against transformers' `generate`.

A token step is one cached single-token forward of the LM: (time of 7 tokens - time of 1 token) / 6,
both from the same prefill. Its floor is the bytes every step must read, over the copy kernel's
bandwidth: the decoder layers' and final norm's weights, the 256 action rows of the LM head (our
decoder never computes the other rows) and the KV cache at the mean context of the six steps.
`generate` decodes the same 7 tokens from the same prefix embeddings, restricted to the action ids
(tools/bench_policy.py's logits processor), so both sample the same distribution.
"""

from __future__ import annotations

from typing import Any

import torch
from transformers import LogitsProcessorList

from gpu_parts.common import Setting, build, copy_bandwidth, make_obs, ms, row

TOKENS = 7


def step_bytes(net, batch: int, context: float) -> dict[str, float]:
    """Bytes one cached token step reads: weights (layers, final norm, 256 head rows) and KV cache."""
    lm = net.language_model
    text = lm.config
    e = next(lm.parameters()).element_size()
    layers = sum(p.numel() * p.element_size() for p in lm.model.layers.parameters())
    layers += sum(p.numel() * p.element_size() for p in lm.model.norm.parameters())
    head = 256 * text.hidden_size * e
    head_dim = text.hidden_size // text.num_attention_heads
    kv = batch * 2 * text.num_hidden_layers * text.num_key_value_heads * head_dim * context * e
    return {"weights": float(layers + head), "kv_cache": float(kv)}


def run(s: Setting) -> dict[str, Any]:
    from bench_policy import RestrictToActionIds

    from vla_rl.models.openvla.decoding import decode_with_cache
    from vla_rl.models.tokenizer import trim_padding

    bandwidth = copy_bandwidth(s)
    policy = build(s, "openvla").eval()
    net, lm = policy.net, policy.net.language_model
    procs = LogitsProcessorList([RestrictToActionIds(net.first_action_id)])
    rows, data = [row("copy-kernel bandwidth", f"{bandwidth / 1e9:,.0f} GB/s", "bytes read + written / time")], []
    for n in s.batches:
        with torch.no_grad():
            inputs = policy.prepare(make_obs(n, policy.image_size))
            embeds, mask = net.prefix(*trim_padding(inputs["input_ids"], inputs["attention_mask"]), inputs["images"])

            def ours(tokens: int = TOKENS):
                return decode_with_cache(net, embeds, mask, tokens, "sample", 1.0)

            def generate(sample: bool = True):
                return lm.generate(inputs_embeds=embeds, attention_mask=mask, max_new_tokens=TOKENS,
                                   min_new_tokens=TOKENS, do_sample=sample, temperature=1.0, top_k=0, top_p=1.0,
                                   logits_processor=procs, pad_token_id=lm.config.pad_token_id, eos_token_id=None)

            t_all, t_first = s.timed(ours), s.timed(lambda: ours(1))
            t_gen = s.timed(generate)
            greedy_equal = bool(torch.equal(decode_with_cache(net, embeds, mask, TOKENS, "greedy", 1.0)[0]
                                            + net.first_action_id, generate(False)[:, -TOKENS:]))
        step = max(t_all - t_first, 0.0) / (TOKENS - 1)
        nbytes = step_bytes(net, n, embeds.shape[1] + TOKENS / 2)
        floor = (nbytes["weights"] + nbytes["kv_cache"]) / bandwidth
        data.append({"batch": n, "prefix_tokens": int(embeds.shape[1]), "decode_s": t_all, "prefill_and_first_s": t_first,
                     "token_step_s": step, "floor_s": floor, "weights_floor_s": nbytes["weights"] / bandwidth,
                     "step_bytes": nbytes, "generate_s": t_gen, "ours_over_generate_speed": t_gen / t_all,
                     "greedy_tokens_equal_generate": greedy_equal})
        rows.append(row(f"token step, batch {n}", ms(step),
                        f"floor {ms(floor)} ({step / floor:.2f}x floor); ours/generate {t_gen / t_all:.2f}x; "
                        f"greedy equal: {greedy_equal}"))
    params = sum(p.numel() for p in policy.parameters())
    return {"rows": rows, "bandwidth_bytes_per_s": bandwidth, "params": params, "batches": data}


__all__ = ["run", "step_bytes"]
