"""SFT on real scripted demos with real tiny models: the held-out loss falls, the inputs are the
policy's own, and the saved checkpoint is what `model.pretrained` loads."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from vla_rl.config.loader import load_config
from vla_rl.config.model import ModelConfig
from vla_rl.config.warmstart import WarmstartConfig
from vla_rl.demos.format import load_demos
from vla_rl.models.registry import build_policy
from vla_rl.sft.dataset import chunk_actions, discounted_returns, episode_samples, forward_inputs, split_episodes
from vla_rl.sft.trainer import train_sft


def _policy(demos, **model):
    meta = demos.meta
    return build_policy(ModelConfig(**model), action_dim=meta["action_dim"], cameras=tuple(meta["cameras"]),
                        proprio_dim=meta["proprio_dim"], seed=0, gripper_convention=meta["gripper_convention"])


@pytest.mark.parametrize("model", [dict(family="openvla", size="tiny"), dict(family="cnn", size="tiny"),
                                   dict(family="pi0", size="tiny", action_chunk=4, denoise_steps=5)],
                         ids=["openvla", "cnn", "pi0"])
def test_sft_lowers_the_held_out_loss(push_demos, model):
    torch.manual_seed(0)
    demos = load_demos(push_demos)
    policy = _policy(demos, **model)
    cfg = WarmstartConfig(sft_steps=24, batch_size=8, lr=1e-3, holdout_fraction=0.25, eval_loss_every=12)
    result = train_sft(policy, list(demos), cfg, seed=0, progress=False)
    first, last = result.holdout[0], result.holdout[-1]
    assert [h["step"] for h in result.holdout] == [0, 12, 24]
    assert last["holdout/loss"] < 0.75 * first["holdout/loss"], result.holdout  # token families: the NLL
    assert ("holdout/nll" in last) == (model["family"] != "pi0") and ("holdout/flow_mse" in last) == (model["family"] == "pi0")
    assert last["holdout/action_l1"] < first["holdout/action_l1"], result.holdout
    assert len(result.holdout_episodes) == 1 and set(result.train_episodes).isdisjoint(result.holdout_episodes)


def test_forward_inputs_are_the_policys_own_with_demo_tokens(push_demos):
    demos = load_demos(push_demos)
    episodes = list(demos)[:2]
    policy = _policy(demos, family="openvla_oft", size="tiny", action_chunk=4, use_proprio=True)
    samples = episode_samples(episodes, chunk=4)
    inputs = forward_inputs(policy, samples)
    n = sum(len(e) for e in episodes)
    assert inputs["action_tokens"].shape == (n, 4, 7) and inputs["images"].shape[0] == n
    act = policy.act({"images": {"main": samples.obs["images"]["main"][:3]}, "proprio": samples.obs["proprio"][:3],
                      "instruction": samples.obs["instruction"][:3]}, mode="greedy").forward_inputs
    for key in act:
        if key != "action_tokens":
            torch.testing.assert_close(inputs[key][:3], act[key].cpu())
    decoded = policy.codec.decode(inputs["action_tokens"].numpy())
    mask = samples.mask
    assert np.abs(decoded[mask] - samples.actions[mask]).max() <= 2.0 / 255 + 1e-6  # one bin
    assert not mask[len(episodes[0]) - 1, 1:].any()  # past the episode's end: masked
    out = policy.evaluate({k: v[:5] for k, v in inputs.items()})
    assert out.logprobs.shape == (5, 4, 7)


def test_a_flow_policy_gets_its_own_demo_targets(push_demos):
    demos = load_demos(push_demos)
    policy = _policy(demos, family="pi0", size="tiny", action_chunk=4, use_proprio=True, denoise_steps=3)
    samples = episode_samples(list(demos)[:1], chunk=4)
    inputs = forward_inputs(policy, samples)
    assert "action_tokens" not in inputs and "chain" not in inputs
    torch.testing.assert_close(inputs["demo_actions"], torch.as_tensor(policy.codec.from_env(samples.actions)).float())
    act = policy.act({"images": {"main": samples.obs["images"]["main"][:2]}, "proprio": samples.obs["proprio"][:2],
                      "instruction": samples.obs["instruction"][:2]}, mode="greedy").forward_inputs
    for key in ("images", "input_ids", "attention_mask", "proprio"):
        torch.testing.assert_close(inputs[key][:2], act[key])


def test_chunks_returns_and_splits_are_exact():
    actions = np.arange(6, dtype=np.float32).reshape(3, 2)
    chunks, mask = chunk_actions(actions, 2)
    np.testing.assert_array_equal(chunks[:, 0], actions)
    np.testing.assert_array_equal(chunks[2, 1], actions[2])
    np.testing.assert_array_equal(mask, [[True, True], [True, True], [True, False]])
    np.testing.assert_allclose(discounted_returns(np.array([1.0, 0.0, 2.0]), 0.5), [1.5, 1.0, 2.0])
    train, hold = split_episodes(8, 0.25, seed=3)
    assert len(hold) == 2 and sorted(train + hold) == list(range(8))
    assert split_episodes(1, 0.5, seed=0) == ([0], [])


def test_sft_command_saves_what_model_pretrained_loads(push_demos, tmp_path):
    from vla_rl.cli.sft import main

    out = tmp_path / "sft"
    args = ["env.task=PushCube-v1", "env.image_size=64", "warmstart.sft_steps=5", "warmstart.batch_size=8",
            "warmstart.eval_loss_every=5"]
    assert main(["quickstart_ppo", *args, "--demos", str(push_demos), "--out", str(out), "--no-progress"]) == 0
    summary = json.loads((out / "sft.json").read_text())
    assert summary["steps"] == 5 and summary["holdout_loss_final"] == summary["holdout_nll_final"] is not None
    assert summary["demos"] == 4
    assert (out / "config.yaml").is_file() and (out / "logs" / "metrics.jsonl").is_file()
    config = load_config("quickstart_ppo", [*args, f"model.pretrained={out / 'policy'}"])
    loaded = build_policy(config.model, action_dim=7, cameras=("main",), proprio_dim=8, seed=1,
                          gripper_convention="open_positive")
    demos = load_demos(push_demos)
    saved = _policy(demos, family=config.model.family, pretrained=str(out / "policy"))
    inputs = forward_inputs(loaded, episode_samples(list(demos)[:1], chunk=1))
    torch.testing.assert_close(loaded.evaluate(inputs).logprobs, saved.evaluate(inputs).logprobs)


def test_demos_for_another_task_are_refused(push_demos):
    from vla_rl.sft.warmstart import check_demos_match

    config = load_config("quickstart_ppo", ["env.task=PickCube-v1", "env.image_size=64"])
    with pytest.raises(ValueError, match="PushCube-v1"):
        check_demos_match(config, load_demos(push_demos))
