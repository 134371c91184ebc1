"""The 7B memory plan (vla_rl/models/openvla/memory_plan.py): its arithmetic against what autograd really
keeps on tiny models, gradient checkpointing, and the published-size builds on the meta device."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vla_rl.config.model import LoraConfig, ModelConfig
from vla_rl.models.openvla.memory_plan import plan_memory, saved_activation_bytes
from vla_rl.models.registry import build_policy
from vla_rl.models.tokenizer import trim_padding

CAMERAS = ("main", "wrist")


def _tiny(family: str = "openvla", dtype: str = "bfloat16", targets=None, **kw):
    lora = LoraConfig(enabled=True, rank=4, **({"target_modules": targets} if targets else {}))
    torch.manual_seed(1)  # adapters draw their initialisation from the global stream
    return build_policy(ModelConfig(family=family, size="tiny", dtype=dtype, lora=lora, **kw), 7, CAMERAS, 8, seed=0)


def _batch(policy, n: int = 3):
    rng = np.random.default_rng(0)
    obs = {"images": {c: rng.integers(0, 255, (n, 64, 64, 3), dtype=np.uint8) for c in CAMERAS},
           "proprio": rng.normal(size=(n, 8)).astype(np.float32),
           "instruction": ["push the cube", "pick it up and place it on the plate", "open"]}
    torch.manual_seed(0)
    fi = policy.act(obs).forward_inputs
    ids, _ = trim_padding(fi["input_ids"], fi["attention_mask"])
    return fi, ids.shape[1] - 1  # prompt tokens after BOS, as the plan counts them


@pytest.mark.parametrize("family, dtype, targets, kw", [
    ("openvla", "bfloat16", None, {}),
    ("openvla", "float32", None, {}),
    ("openvla", "bfloat16", ("all-linear",), {}),
    ("openvla", "bfloat16", ("q_proj", "v_proj"), {}),
    ("openvla_oft", "bfloat16", None, dict(action_chunk=2, use_wrist=True, use_proprio=True)),
])
def test_activations_per_sample_are_what_autograd_saves(family, dtype, targets, kw):
    policy = _tiny(family, dtype, targets, **kw).train()
    fi, prompt = _batch(policy)
    measured, _ = saved_activation_bytes(lambda: policy.evaluate(fi), exclude=policy)
    plan = plan_memory(policy, prompt_tokens=prompt)
    assert plan.activations_per_sample == pytest.approx(measured / 3, rel=2e-3)


def test_gradient_checkpointing_keeps_less_and_gives_the_same_gradients():
    grads, saved = [], []
    for on in (False, True):
        policy = _tiny(gradient_checkpointing=on).train()
        fi, prompt = _batch(policy)
        nbytes, ev = saved_activation_bytes(lambda: policy.evaluate(fi), exclude=policy)
        (ev.logprobs.sum() + ev.values.sum()).backward()
        grads.append({n: p.grad for n, p in policy.named_parameters() if p.grad is not None})
        saved.append(nbytes)
    assert grads[0].keys() == grads[1].keys() and len(grads[0]) > 20
    for name in grads[0]:
        torch.testing.assert_close(grads[0][name], grads[1][name], msg=name)
    assert saved[1] * 4 < saved[0]
    plan = plan_memory(policy, prompt_tokens=prompt)
    kept = plan.activations_ckpt_per_sample * 3
    assert saved[1] <= kept <= 1.15 * saved[1], "the plan's checkpointed figure bounds what is kept, tightly"


def test_a_checkpointed_policy_in_training_mode_still_decodes_with_its_kv_cache():
    """transformers turns the cache off under checkpointing only when gradients are on; `act` runs without."""
    plain, ckpt = _tiny(), _tiny(gradient_checkpointing=True).train()
    ckpt.load_state_dict(plain.state_dict())
    obs = {"images": {c: np.full((2, 64, 64, 3), 90 + 40 * i, np.uint8) for i, c in enumerate(CAMERAS)},
           "proprio": np.zeros((2, 8), np.float32), "instruction": ["push the cube", "open the drawer"]}
    a, b = plain.eval().act(obs, mode="greedy"), ckpt.act(obs, mode="greedy")
    assert torch.equal(a.forward_inputs["action_tokens"], b.forward_inputs["action_tokens"])
    torch.testing.assert_close(a.logprobs, b.logprobs)


def test_plan_totals_are_sums_of_their_parts():
    plan = plan_memory(_tiny(), prompt_tokens=20)
    assert plan.weights == plan.params * 2 and plan.grads == plan.trainable * 2 and plan.optimizer == 4 * plan.trainable
    per_env = plan.kv_cache_per_sample + plan.inference_peak_per_sample
    assert plan.rollout_bytes(8) == plan.weights + 8 * per_env + plan.reserve_bytes
    assert plan.rollout_bytes(8, offload=False) == plan.rollout_bytes(8) + plan.optimizer
    per = plan.activations_ckpt_per_sample + plan.ckpt_peak_per_sample
    assert plan.train_bytes(4) == plan.weights + plan.grads + plan.optimizer + 4 * per + plan.reserve_bytes
    big = plan_memory(_tiny(), prompt_tokens=20, gpu_bytes=plan.train_bytes(10) + 1)
    assert big.max_minibatch(True) == 10


@pytest.fixture(scope="module")
def openvla_7b():
    with torch.device("meta"):
        return build_policy(ModelConfig(family="openvla", size="7b", dtype="bfloat16", gradient_checkpointing=True,
                                        lora=LoraConfig(enabled=True)), 7, ("main",), 8, seed=0)


def test_7b_builds_at_published_size_on_the_meta_device(openvla_7b):
    net = openvla_7b.net
    assert next(net.parameters()).device.type == "meta" and next(net.parameters()).dtype == torch.bfloat16
    text = net.language_model.config
    assert (text.vocab_size, text.hidden_size, text.num_hidden_layers, text.intermediate_size) == (32064, 4096, 32, 11008)
    assert len(openvla_7b.tokenizer) == 32001 and openvla_7b.tokenizer.pad_token_id == 32000
    assert net.first_action_id == 31744  # the last 256 ids of Llama-2's 32000
    lm = {k: v for k, v in net.language_model.state_dict().items() if "lora_" not in k}
    # Llama-2-7B's 6,738,415,616 parameters, with embedding and output rows padded from 32000 to 32064
    assert sum(v.numel() for v in lm.values()) == 6_738_415_616 + 2 * 64 * 4096
    llm = net.language_model  # transformers 5.24 renamed is_gradient_checkpointing
    assert llm.is_activation_checkpointing if hasattr(llm, "is_activation_checkpointing") else llm.is_gradient_checkpointing


def test_7b_plan_arithmetic(openvla_7b):
    plan = plan_memory(openvla_7b, prompt_tokens=32)
    net, r = openvla_7b.net, 32
    # LoRA: rank x (in + out) for every adapted linear layer, counted from the layers themselves
    adapted = [m for m in net.modules() if hasattr(m, "lora_A")]
    lora_ref = sum(r * (m.base_layer.in_features + m.base_layer.out_features) for m in adapted)
    assert plan.lora == lora_ref
    assert 32 * r * (4 * 2 * 4096 + 3 * (4096 + 11008)) < plan.lora  # the LM's share alone
    # KV cache: keys and values of 32 layers x 4096 for BOS + 256 patches + 32 prompt tokens + 6 decoded tokens
    assert plan.tokens_rollout == 1 + 256 + 32 + 6
    assert plan.kv_cache_per_sample == 2 * 32 * 4096 * 295 * 2
    assert plan.weights == 2 * sum(p.numel() for p in net.parameters())
    # an 80 GB GPU holds the rollout of 64 envs and a checkpointed minibatch of 32
    assert plan.rollout_bytes(64) < 80e9 and plan.train_bytes(32, checkpointing=True) < 80e9
    assert plan.train_bytes(64, checkpointing=False) > 80e9, "without checkpointing a 64-sample minibatch does not fit"
