"""`RemotePolicy`: a batched platform observation sent as one request per environment gives exactly the
actions of the in-process policy (the simulator version of this check is in test_serve_sim.py)."""

import numpy as np
import pytest

from vla_rl.serve import RemotePolicy


def _obs(n: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    return {"images": {"main": rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)},
            "proprio": rng.standard_normal((n, 9)).astype(np.float32),
            "instruction": [f"task number {i}" for i in range(n)]}


def test_remote_policy_equals_in_process_policy(server, loaded):
    with RemotePolicy(server.uri, num_envs=5) as remote:
        for seed in (0, 1, 2):
            obs = _obs(5, seed)
            out = remote.act(obs, mode="greedy")
            want = loaded.policy.act(obs, mode="greedy").actions
            assert out.actions.shape == want.shape == (5, 1, 7) and out.actions.dtype == np.float32
            np.testing.assert_array_equal(out.actions, want)
        partial = _obs(3, 3)  # the last evaluation round may use fewer environments
        np.testing.assert_array_equal(remote.act(partial).actions, loaded.policy.act(partial, mode="greedy").actions)
        with pytest.raises(ValueError, match="decodes greedily"):
            remote.act(obs, mode="sample")
        with pytest.raises(ValueError, match="6 environments but this RemotePolicy has 5"):
            remote.act(_obs(6, 4))
