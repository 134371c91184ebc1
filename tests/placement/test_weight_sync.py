"""Weight sync from the actor to a rollout worker: only what can change travels, versions are checked
on the rollout side, and checksums prove the rollout's weights equal the actor's (real tiny OpenVLA
policies, one rollout worker in a process of its own)."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from placement.process_host import ProcessHost, RemoteCallError
from placement.rollout_group import RolloutGroup
from placement.weight_sync import WeightReceiver, WeightSender, WeightSyncError, state_checksum
from vla_rl.config.model import LoraConfig, ModelConfig
from vla_rl.models.registry import build_policy

FACTS = dict(action_dim=7, cameras=("main",), proprio_dim=8, gripper_convention="open_positive")


def tiny(lora: bool, seed: int = 0):
    cfg = ModelConfig(family="openvla", size="tiny", lora=LoraConfig(enabled=lora, rank=4))
    return cfg, build_policy(cfg, seed=seed, **FACTS)


def train_a_little(policy) -> None:
    """Change every trainable tensor the way an optimizer step would."""
    with torch.no_grad():
        for p in policy.parameters():
            if p.requires_grad:
                p.add_(torch.randn_like(p) * 1e-2)


def test_with_lora_only_adapters_and_value_head_travel_after_the_first_sync():
    _, actor = tiny(lora=True)
    _, rollout = tiny(lora=True, seed=1)  # different initial weights: the first sync must fix them all
    sender, receiver = WeightSender(actor), WeightReceiver(rollout)
    first = sender.payload()
    assert first.full and first.version == 1 and set(first.tensors) == set(actor.state_dict())
    assert receiver.apply(first) == 1
    assert state_checksum(rollout) == state_checksum(actor)
    train_a_little(actor)
    second = sender.payload()
    assert not second.full and second.version == 2
    assert second.tensors and all("lora_" in n or "value_head" in n for n in second.tensors), sorted(second.tensors)[:5]
    assert second.num_bytes < first.num_bytes / 5
    assert state_checksum(rollout) != state_checksum(actor)
    receiver.apply(second)
    assert state_checksum(rollout) == state_checksum(actor)


def test_without_lora_every_trainable_weight_travels():
    _, actor = tiny(lora=False)
    sender = WeightSender(actor)
    sender.payload()
    trainable = {n for n, p in actor.named_parameters() if p.requires_grad}
    assert set(sender.payload().tensors) == trainable


def test_rollout_side_refuses_out_of_order_partial_first_and_corrupted_payloads():
    _, actor = tiny(lora=True)
    _, rollout = tiny(lora=True)
    sender, receiver = WeightSender(actor), WeightReceiver(rollout)
    first, second = sender.payload(), sender.payload()
    with pytest.raises(WeightSyncError, match="must be the full state"):
        receiver.apply(dataclasses.replace(first, full=False))
    with pytest.raises(WeightSyncError, match="version 0 and got version 2"):
        receiver.apply(second)
    receiver.apply(first)
    with pytest.raises(WeightSyncError, match="version 1 and got version 1"):
        receiver.apply(first)  # a replayed payload
    name = next(iter(second.tensors))
    second.tensors[name] = second.tensors[name] + 1.0
    with pytest.raises(WeightSyncError, match="checksum"):
        receiver.apply(second)


def test_sync_to_a_rollout_worker_process_matches_the_actor_checksum():
    cfg, actor = tiny(lora=True)
    host = ProcessHost("placement.rollout_worker:RolloutWorker",
                       dict(model=cfg, seed=7, device="cpu", torch_threads=1, **FACTS), name="rollout-test")
    try:
        group = RolloutGroup([host])
        sender = WeightSender(actor)
        assert host.call("checksum") != state_checksum(actor)  # built with another seed
        for version in (1, 2, 3):
            assert sender.push(group) == version
            assert host.call("version") == version
            assert host.call("checksum") == state_checksum(actor)
            train_a_little(actor)
        sender.push(group)
        obs = {"images": {"main": torch.randint(0, 255, (3, 64, 64, 3), dtype=torch.uint8).numpy()},
               "proprio": torch.zeros(3, 8).numpy(), "instruction": ["pick up the cube"] * 3}
        remote, local = group.act(obs, mode="greedy"), actor.act(obs, mode="greedy")
        assert (remote.actions == local.actions).all()
        torch.testing.assert_close(remote.values, local.values)
        torch.testing.assert_close(group.value(obs), local.values)  # the bootstrap's value call, no decoding
        stale = WeightSender(actor).payload()  # a second sender starting over at version 1
        with pytest.raises(RemoteCallError, match="holds weights version 4"):
            group.load_weights(stale)
    finally:
        host.close()
