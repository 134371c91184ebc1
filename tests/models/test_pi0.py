"""The pi0 family beyond the shared contract: the denoising chain's log-probs against a naive per-step
computation, the SDE's marginals, the two noise formulations, flow-matching SFT inputs, the pi0.5
variant, published names and sizes (meta device), the memory plan, LoRA and reload settings."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
import torch

from vla_rl.config.core import ConfigError
from vla_rl.config.model import ModelConfig
from vla_rl.models.pi0 import flow
from vla_rl.models.registry import build_policy, load_policy

CAMERAS, PROPRIO, ACTION_DIM = ("main", "wrist"), 9, 7
SDE = ModelConfig(family="pi0", action_chunk=3, use_proprio=True, use_wrist=True, denoise_steps=4, noise_level=0.7)
NOISE = replace(SDE, noise_method="flow_noise", noise_level=0.5, noise_std_min=0.05, noise_std_max=0.3)


def _policy(cfg, seed=0):
    return build_policy(cfg, ACTION_DIM, CAMERAS, PROPRIO, seed=seed)


@pytest.fixture(scope="module", params=["flow_sde", "flow_noise"])
def policy(request):
    return _policy(SDE if request.param == "flow_sde" else NOISE)


def _naive_step(policy, inputs, x, k):
    """One denoising step written out from the formulas (docs/models.md), independent of flow.py."""
    net, steps = policy.net, policy.denoise_steps
    kv, valid, state, _ = policy._prefix(inputs)
    t, dt = 1.0 - k / steps, 1.0 / steps
    v, features = net.velocity(kv, valid, x, torch.full((x.shape[0],), t), state)
    if policy.meta["noise_method"] == "flow_sde":
        sigma = policy.meta["noise_level"] * math.sqrt(t / max(1.0 - t, dt))
        x0, x1 = x - t * v, x + (1 - t) * v
        mean = x0 * (1 - (t - dt)) + x1 * ((t - dt) - sigma ** 2 * dt / (2 * t))
        std = torch.full_like(mean, sigma * math.sqrt(dt))
    else:
        lo, hi = NOISE.noise_std_min, NOISE.noise_std_max
        h = net.noise_head
        std = lo + (hi - lo) * torch.sigmoid(h.fc2(torch.tanh(h.fc1(features))))
        mean = x - dt * v
    return mean, std


def test_logprobs_match_a_naive_per_step_computation(policy, make_obs):
    torch.manual_seed(3)
    out = policy.act(make_obs(4, seed=1, proprio_dim=PROPRIO, wrist=True), temperature=0.8)
    inputs, chain = out.forward_inputs, out.forward_inputs["chain"]
    assert chain.shape == (4, policy.denoise_steps + 1, 3, ACTION_DIM)
    logp, entropy = torch.zeros(4, 3, ACTION_DIM), torch.zeros(4, 3, ACTION_DIM)
    with torch.no_grad():
        for k in range(policy.denoise_steps):
            mean, std = _naive_step(policy, inputs, chain[:, k], k)
            gauss = torch.distributions.Normal(mean, 0.8 * std)
            logp += gauss.log_prob(chain[:, k + 1])
            entropy += gauss.entropy()
            torch.testing.assert_close(out.chain["means"][:, k], mean, atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(out.chain["stds"][:, k], 0.8 * std, atol=1e-6, rtol=1e-5)
            torch.testing.assert_close(chain[:, k + 1], mean + 0.8 * std * out.chain["noise"][:, k], atol=1e-5, rtol=0)
    torch.testing.assert_close(out.logprobs, logp, atol=1e-4, rtol=1e-5)
    ev = policy.evaluate(inputs, temperature=0.8)
    torch.testing.assert_close(ev.logprobs.detach(), logp, atol=1e-4, rtol=1e-5)
    torch.testing.assert_close(ev.entropy.detach(), entropy, atol=1e-5, rtol=1e-5)
    # the chunk's log-prob is the chain's: a sum over steps, actions and dims
    torch.testing.assert_close(ev.logprobs.sum((1, 2)).detach(), logp.sum((1, 2)), atol=1e-3, rtol=1e-5)


def test_greedy_follows_the_ode_from_the_noise_mean(policy, make_obs):
    obs = make_obs(2, seed=2, proprio_dim=PROPRIO, wrist=True)
    out = policy.act(obs, mode="greedy")
    chain = out.forward_inputs["chain"]
    assert torch.equal(chain[:, 0], torch.zeros_like(chain[:, 0])) and torch.equal(out.chain["noise"], torch.zeros_like(out.chain["noise"]))
    with torch.no_grad():
        kv, valid, state, _ = policy._prefix(out.forward_inputs)
        x = chain[:, 0]
        for k in range(policy.denoise_steps):
            v, _ = policy.net.velocity(kv, valid, x, torch.full((2,), 1.0 - k / policy.denoise_steps), state)
            x = x - v / policy.denoise_steps
            torch.testing.assert_close(chain[:, k + 1], x, atol=1e-6, rtol=0)
    np.testing.assert_allclose(out.actions, policy.codec.to_env(x.numpy()), atol=1e-6)


def test_sde_steps_keep_the_flow_marginals():
    """With the exact velocity of a point-mass target a, x_t ~ N((1 - t) a, t^2). Each SDE step keeps the
    mean exactly; its std matches up to the Euler-Maruyama error, which shrinks with the number of steps
    (at 10 steps and noise level 0.8 the final chunk keeps a std of ~0.1, at 200 steps ~0.005)."""
    torch.manual_seed(0)
    a = torch.tensor([0.5, -0.3])

    def run(steps, n=50_000):
        grid, x, errors = flow.time_grid(steps), torch.randn(n, 2), []
        for k in range(steps):
            t, dt = grid[k], float(grid[k] - grid[k + 1])
            mean, std = flow.sde_gaussian(x, (x - a) / t, t, dt, noise_level=0.8)
            x = mean + std * torch.randn_like(x)
            t_next = float(grid[k + 1])
            torch.testing.assert_close(x.mean(0), (1 - t_next) * a, atol=0.015, rtol=0)
            errors.append(abs(float(x.std(0).mean()) - t_next))
        return errors

    coarse, fine = run(10), run(200)
    assert 0.05 < coarse[-1] < 0.15 and fine[-1] < 0.01, (coarse[-1], fine[-1])
    assert max(fine[50:]) < 0.02 and max(fine) < 0.1  # only the first steps (sigma floored at t = 1) stray


def test_temperature_scales_the_step_stds(policy, make_obs):
    torch.manual_seed(4)
    out = policy.act(make_obs(3, seed=3, proprio_dim=PROPRIO, wrist=True), temperature=1.0)
    cold, warm = policy.evaluate(out.forward_inputs, 0.5), policy.evaluate(out.forward_inputs, 1.0)
    steps = policy.denoise_steps
    torch.testing.assert_close((warm.entropy - cold.entropy).detach(), torch.full_like(warm.entropy, steps * math.log(2.0)),
                               atol=1e-4, rtol=0)
    with pytest.raises(ValueError, match="temperature"):
        policy.act(make_obs(1, proprio_dim=PROPRIO, wrist=True), temperature=0.0)


def test_flow_noise_std_stays_in_its_range_and_is_learned(make_obs):
    policy = _policy(NOISE)
    out = policy.act(make_obs(4, seed=5, proprio_dim=PROPRIO, wrist=True))
    stds = out.chain["stds"]
    assert float(stds.min()) >= NOISE.noise_std_min and float(stds.max()) <= NOISE.noise_std_max
    ev = policy.evaluate(out.forward_inputs)
    ev.entropy.sum().backward()
    assert policy.net.noise_head.fc2.weight.grad.abs().sum() > 0  # the entropy depends on the head (flow_sde's does not)


def test_a_stored_chain_of_another_length_is_refused(policy, make_obs):
    out = policy.act(make_obs(2, proprio_dim=PROPRIO, wrist=True))
    fi = {**out.forward_inputs, "chain": out.forward_inputs["chain"][:, :-1]}
    with pytest.raises(ValueError, match="denoising steps"):
        policy.evaluate(fi)


def test_supervised_loss_is_flow_matching_on_demo_chunks(make_obs):
    policy = _policy(SDE)
    obs = make_obs(4, seed=6, proprio_dim=PROPRIO, wrist=True)
    demo = np.random.default_rng(0).uniform(-1, 1, (4, 3, ACTION_DIM)).astype(np.float32)
    inputs = {**policy.prepare(obs), **policy.demo_targets(demo)}
    torch.testing.assert_close(inputs["demo_actions"], torch.as_tensor(demo))  # identity statistics
    mask = torch.ones(4, 3, dtype=torch.bool)
    torch.manual_seed(0)
    out = policy.supervised_loss(inputs, mask)
    # the same draw by hand: t ~ Beta(1.5, 1) after the noise, loss = mean ||v(x_t, t) - (noise - action)||^2
    torch.manual_seed(0)
    noise = torch.randn(4, 3, ACTION_DIM)
    t = flow.sample_time(4)
    x_t = t[:, None, None] * noise + (1 - t[:, None, None]) * inputs["demo_actions"]
    kv, valid, state, _ = policy._prefix(inputs)
    v, _ = policy.net.velocity(kv, valid, x_t, t, state)
    torch.testing.assert_close(out.loss, (v - (noise - inputs["demo_actions"])).square().mean(), atol=1e-5, rtol=1e-5)
    torch.manual_seed(0)
    half = policy.supervised_loss(inputs, torch.tensor([[True, True, True], [False] * 3, [False] * 3, [False] * 3]))
    torch.testing.assert_close(half.loss, (v - (noise - inputs["demo_actions"]))[0].square().mean(), atol=1e-5, rtol=1e-5)
    assert out.values.shape == (4,) and "flow_mse" in out.metrics


def test_pi05_variant_reads_the_state_in_its_prompt(make_obs):
    cfg = replace(SDE, size="tiny-pi05")
    policy = _policy(cfg)
    assert policy.net.pi05 and not hasattr(policy.net, "state_proj") and policy.reads_proprio
    obs = make_obs(3, seed=7, proprio_dim=PROPRIO, wrist=True)
    out = policy.act(obs, temperature=0.9)
    assert "proprio" not in out.forward_inputs
    obs2 = {**obs, "proprio": obs["proprio"] + 0.5}
    assert not torch.equal(policy.prepare(obs2)["input_ids"], out.forward_inputs["input_ids"])
    ev = policy.evaluate(out.forward_inputs, temperature=0.9)
    torch.testing.assert_close(ev.logprobs.detach(), out.logprobs, atol=1e-4, rtol=1e-5)
    names = dict(policy.net.named_parameters())
    assert "paligemma_with_expert.gemma_expert.model.layers.0.input_layernorm.dense.weight" in names
    assert "time_mlp_in.weight" in names and "action_time_mlp_in.weight" not in names


def test_saved_layout_and_lerobot_names_load(make_obs, tmp_path):
    from safetensors.torch import load_file, save_file

    from vla_rl.models.checkpoint_io import read_config, write_config

    policy = _policy(SDE)
    policy.save_pretrained(str(tmp_path / "ours"))
    state = load_file(str(tmp_path / "ours" / "model.safetensors"))
    assert "paligemma_with_expert.paligemma.model.vision_tower.vision_model.embeddings.patch_embedding.weight" in state
    assert "paligemma_with_expert.paligemma.lm_head.weight" not in state  # tied to the embeddings, saved once
    assert {"action_in_proj.weight", "state_proj.weight", "action_time_mlp_in.weight", "value_head.fc1.weight"} <= set(state)
    config = read_config(str(tmp_path / "ours"))
    assert (config["type"], config["chunk_size"], config["max_action_dim"], config["num_inference_steps"]) == ("pi0", 3, 7, 4)
    # LeRobot's layout: every name under "model.", plus a tensor we never read (openpi's expert LM head)
    lerobot = tmp_path / "lerobot"
    lerobot.mkdir()
    extra = torch.randn(8, 32)
    save_file({**{"model." + k: v for k, v in state.items()}, "model.paligemma_with_expert.gemma_expert.lm_head.weight": extra},
              str(lerobot / "model.safetensors"))
    write_config(str(lerobot), config)
    policy.tokenizer.save_pretrained(str(lerobot))
    loaded = load_policy(str(lerobot))
    obs = make_obs(3, seed=8, proprio_dim=PROPRIO, wrist=True)
    np.testing.assert_array_equal(loaded.act(obs, mode="greedy").actions, policy.act(obs, mode="greedy").actions)
    loaded.save_pretrained(str(tmp_path / "again"))
    resaved = load_file(str(tmp_path / "again" / "model.safetensors"))
    assert torch.equal(resaved["paligemma_with_expert.gemma_expert.lm_head.weight"], extra)


def test_published_sizes_on_the_meta_device():
    """openpi's pi0 (PaliGemma 3B + Gemma 300M expert) and pi0.5 built without memory: the published names and
    shapes, and the parameter counts of the memory plan."""
    from vla_rl.models.pi0.layout import section_or_default, to_published_state
    from vla_rl.models.pi0.memory import memory_plan
    from vla_rl.models.pi0.network import Pi0Network
    from vla_rl.models.pi0.spec import SIZES

    with torch.device("meta"):
        net = Pi0Network(SIZES["pi0"], 257152, 0, 32, 32, None, None)
    state = to_published_state(net.state_dict())
    shapes = {
        "paligemma_with_expert.paligemma.model.vision_tower.vision_model.embeddings.patch_embedding.weight": (1152, 3, 14, 14),
        "paligemma_with_expert.paligemma.model.vision_tower.vision_model.encoder.layers.26.mlp.fc1.weight": (4304, 1152),
        "paligemma_with_expert.paligemma.model.multi_modal_projector.linear.weight": (2048, 1152),
        "paligemma_with_expert.paligemma.model.language_model.embed_tokens.weight": (257152, 2048),
        "paligemma_with_expert.paligemma.model.language_model.layers.17.self_attn.k_proj.weight": (256, 2048),
        "paligemma_with_expert.paligemma.model.language_model.layers.17.mlp.gate_proj.weight": (16384, 2048),
        "paligemma_with_expert.gemma_expert.model.layers.17.self_attn.q_proj.weight": (2048, 1024),
        "paligemma_with_expert.gemma_expert.model.layers.17.mlp.down_proj.weight": (1024, 4096),
        "action_in_proj.weight": (1024, 32), "action_out_proj.weight": (32, 1024), "state_proj.weight": (1024, 32),
        "action_time_mlp_in.weight": (1024, 2048),
    }
    for key, shape in shapes.items():
        assert tuple(state[key].shape) == shape, key
    plan = memory_plan("pi0", action_dim=7, proprio_dim=8, value_head=False)
    assert plan.total == sum(p.numel() for p in net.parameters()) == 3_238_048_528
    assert plan.weights_bytes == 2 * plan.total and plan.training_bytes == 12 * plan.total
    assert plan.prefix_tokens == 2 * 256 + 48
    assert plan.prefix_cache_bytes_per_sample == 2 * 18 * 1 * 256 * plan.prefix_tokens * 2
    pi05 = memory_plan("pi05", value_head=False)
    assert pi05.parameters["expert"] - plan.parameters["expert"] == 37 * (3 * 1024 * 1024 + 3 * 1024) - 37 * 1024
    published = section_or_default({"type": "pi05", "paligemma_variant": "gemma_2b", "action_expert_variant": "gemma_300m",
                                    "chunk_size": 50, "n_action_steps": 10, "max_action_dim": 32, "max_state_dim": 32})
    assert published["size"] == "pi05" and published["action_chunk"] == 10 and published["max_prompt_tokens"] == 200
    with pytest.raises(ValueError, match="gemma_2b"):
        section_or_default({"type": "pi0", "paligemma_variant": "gemma_7b", "action_expert_variant": "gemma_300m"})


def test_lora_keeps_the_action_heads_trainable_and_merges_exactly(make_obs):
    from vla_rl.config.model import LoraConfig
    from vla_rl.models.lora import merge_lora

    policy = build_policy(replace(SDE, lora=LoraConfig(enabled=True, rank=4)), ACTION_DIM, CAMERAS, PROPRIO, seed=0)
    trainable = {n for n, p in policy.named_parameters() if p.requires_grad}
    assert any("lora_" in n for n in trainable)
    for head in ("action_in_proj", "action_out_proj", "state_proj", "action_time_mlp_in", "value_head.fc1"):
        assert f"net.{head}.weight" in trainable, head
    for p in policy.parameters():  # move the adapters away from their zero start so the merge is not trivial
        if p.requires_grad:
            p.data.add_(0.01 * torch.randn_like(p))
    obs = make_obs(3, seed=9, proprio_dim=PROPRIO, wrist=True)
    before = policy.act(obs, mode="greedy")
    merged = merge_lora(policy).act(obs, mode="greedy")
    np.testing.assert_allclose(merged.actions, before.actions, atol=1e-5)


def test_reload_takes_the_run_sampler_and_adds_missing_heads(make_obs, tmp_path):
    plain = _policy(replace(SDE, value_head=False))
    plain.save_pretrained(str(tmp_path))
    cfg = replace(NOISE, pretrained=str(tmp_path), denoise_steps=6)
    loaded = build_policy(cfg, ACTION_DIM, CAMERAS, PROPRIO, seed=0)
    assert loaded.denoise_steps == 6 and loaded.net.noise_head is not None and loaded.net.value_head is not None
    out = loaded.act(make_obs(2, proprio_dim=PROPRIO, wrist=True))
    assert out.forward_inputs["chain"].shape[1] == 7 and out.values.shape == (2,)
    assert load_policy(str(tmp_path)).denoise_steps == 4  # without a run config: the saved sampler
    with pytest.raises(ConfigError, match="action_chunk"):
        build_policy(replace(cfg, action_chunk=5), ACTION_DIM, CAMERAS, PROPRIO, seed=0)


@pytest.mark.parametrize("keys, words", [
    (dict(noise_std_max=0.3), "flow_noise"),
    (dict(noise_method="flow_noise", noise_level=0.9), "flow_sde"),
    (dict(noise_method="flow_noise", noise_std_min=0.2, noise_std_max=0.1), "min < max"),
    (dict(denoise_steps=0), "denoise_steps"),
])
def test_config_errors_name_the_fix(keys, words):
    with pytest.raises(ConfigError, match=words):
        ModelConfig(family="pi0", **keys)


@pytest.mark.parametrize("granularity", ["token", "action", "chunk"])
@pytest.mark.parametrize("algo", ["ppo", "grpo"])
def test_first_epoch_ratios_are_one(policy, make_obs, algo, granularity):
    """The runner's first minibatch of the first epoch, on minibatches smaller than the act() batches: the chain's
    log-prob recomputed by evaluate() is act()'s, so every PPO/GRPO ratio is 1 and nothing is clipped."""
    from vla_rl.algorithms import POLICY_LOSSES

    torch.manual_seed(5)
    steps = [policy.act(make_obs(4, seed=s, proprio_dim=PROPRIO, wrist=True), temperature=0.9) for s in range(2)]
    inputs = {k: torch.cat([s.forward_inputs[k] for s in steps]) for k in steps[0].forward_inputs}
    old, values = torch.cat([s.logprobs for s in steps]), torch.cat([s.values for s in steps])
    n = old.shape[0]
    advantages, mask = torch.randn(n, generator=torch.Generator().manual_seed(0)), torch.ones(n, 3, dtype=torch.bool)
    loss = POLICY_LOSSES.get(algo)
    for index in torch.randperm(n, generator=torch.Generator().manual_seed(1)).chunk(3):
        ev = policy.evaluate({k: v[index] for k, v in inputs.items()}, temperature=0.9)
        args = dict(logprobs=ev.logprobs, old_logprobs=old[index], advantages=advantages[index],
                    action_mask=mask[index], entropy=ev.entropy, ref_logprobs=None, traj_ids=index,
                    logprob_granularity=granularity, loss_agg="traj_equal", clip_ratio=0.2, clip_ratio_high=0.28, dual_clip=None,
                    entropy_coef=0.0, kl_coef=0.0, kl_estimator="k3")
        if loss.needs_critic:
            args.update(values=ev.values, old_values=values[index], returns=advantages[index], value_clip=None,
                        huber_delta=None, vf_coef=0.5)
        out = loss.fn(**args)
        assert abs(float(out.metrics["ratio_mean"]) - 1) < 1e-3 and abs(float(out.metrics["ratio_max"]) - 1) < 2e-3
        assert float(out.metrics["clip_fraction"]) == 0 and abs(float(out.metrics["approx_kl"])) < 1e-6
