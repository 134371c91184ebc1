"""The rollout buffer: shapes, flattening order, minibatch coverage, refusal of shape changes."""

from __future__ import annotations

import pytest
import torch

from vla_rl.runner.buffer import RolloutBuffer


def test_add_and_flatten_keeps_time_major_order():
    buf = RolloutBuffer(steps=3, num_envs=2)
    for t in range(3):
        buf.add({"ids": torch.full((2, 4), t)}, reward=torch.tensor([t * 10.0, t * 10.0 + 1]))
    assert buf["reward"].shape == (3, 2)
    assert buf.flat("reward").tolist() == [0.0, 1.0, 10.0, 11.0, 20.0, 21.0]
    assert buf.flat_forward_inputs()["ids"].shape == (6, 4)


def test_partially_filled_window_flattens_only_filled_steps():
    buf = RolloutBuffer(steps=4, num_envs=2)
    buf.add({}, reward=torch.ones(2))
    assert buf.flat("reward").shape == (2,)


def test_minibatches_cover_every_sample_once():
    buf = RolloutBuffer(steps=5, num_envs=3)
    for _ in range(5):
        buf.add({}, x=torch.zeros(3))
    batches = list(buf.minibatches(4, torch.Generator().manual_seed(0)))
    assert len(batches) == 4
    assert sorted(torch.cat(batches).tolist()) == list(range(15))


def test_shape_change_inside_window_is_refused():
    buf = RolloutBuffer(steps=2, num_envs=2)
    buf.add({"ids": torch.zeros(2, 4)})
    with pytest.raises(ValueError, match="changed shape"):
        buf.add({"ids": torch.zeros(2, 5)})


def test_full_buffer_refuses_more():
    buf = RolloutBuffer(steps=1, num_envs=1)
    buf.add({}, x=torch.zeros(1))
    with pytest.raises(IndexError, match="full"):
        buf.add({}, x=torch.zeros(1))
