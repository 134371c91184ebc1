"""Checkpoints are written atomically: a failed save leaves the previous one intact and no residue."""

from __future__ import annotations

import pytest
import torch

from vla_rl.checkpoints import (TrainerState, capture_rng, load_trainer_state, resolve_checkpoint,
                                      restore_rng, save_checkpoint)


class TinySaver(torch.nn.Module):
    """A stand-in policy whose only job here is writing files through `save_pretrained`."""

    def __init__(self, fail: bool = False) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.arange(4.0))
        self.fail = fail

    def save_pretrained(self, path: str) -> None:
        import os

        os.makedirs(path)
        torch.save(self.state_dict(), os.path.join(path, "weights.pt"))
        if self.fail:
            raise RuntimeError("disk full")


def state(iteration: int) -> TrainerState:
    return TrainerState(iteration=iteration, reset_cursor=7 * iteration, optimizer={"lr": 0.1}, rng=capture_rng(),
                        extra={})


def test_save_then_resolve_latest(tmp_path):
    root = tmp_path / "checkpoints"
    save_checkpoint(root, TinySaver(), state(1), "a: 1\n")
    second = save_checkpoint(root, TinySaver(), state(2), "a: 2\n")
    assert resolve_checkpoint(tmp_path) == second
    assert load_trainer_state(second).reset_cursor == 14
    assert (second / "config.yaml").read_text() == "a: 2\n"


def test_failed_save_leaves_previous_checkpoint_and_no_temp_folder(tmp_path):
    root = tmp_path / "checkpoints"
    first = save_checkpoint(root, TinySaver(), state(1), "a: 1\n")
    with pytest.raises(RuntimeError, match="disk full"):
        save_checkpoint(root, TinySaver(fail=True), state(2), "a: 2\n")
    assert resolve_checkpoint(root) == first
    assert sorted(p.name for p in root.iterdir()) == ["iter-000001", "latest"]


def test_overwriting_same_iteration_replaces_it(tmp_path):
    root = tmp_path / "checkpoints"
    save_checkpoint(root, TinySaver(), state(3), "old\n")
    path = save_checkpoint(root, TinySaver(), state(3), "new\n")
    assert (path / "config.yaml").read_text() == "new\n"
    assert sorted(p.name for p in root.iterdir()) == ["iter-000003", "latest"]


def test_rng_round_trip():
    saved = capture_rng()
    a = torch.rand(3)
    restore_rng(saved)
    assert torch.equal(torch.rand(3), a)


def test_resolve_rejects_non_checkpoint(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a checkpoint"):
        resolve_checkpoint(tmp_path)
