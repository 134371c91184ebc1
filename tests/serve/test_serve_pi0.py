"""Serving a flow-matching policy (family pi0): `vla-rl serve`'s loader answers each request with the whole
(H, A) chunk of the ODE sampler, through openpi-client unchanged and batched across clients, and requires the
state the policy reads."""

import numpy as np
import pytest
from openpi_client.websocket_client_policy import WebsocketClientPolicy

from vla_rl.config.model import ModelConfig
from vla_rl.models.registry import build_policy
from vla_rl.serve import PolicyClient, ServeConfig, ServerError, ServerThread, load_for_serving, save_schema, schema_for_env

pytestmark = pytest.mark.filterwarnings("ignore:connect.. must be used as a context manager:DeprecationWarning")

HORIZON, ACTION_DIM, PROPRIO_DIM = 4, 7, 9


@pytest.fixture(scope="module")
def pi0_loaded(tmp_path_factory):
    """A pi0 checkpoint with wrist camera and proprio, saved as the runner does (policy/ + serve_schema.json)."""
    cfg = ModelConfig(family="pi0", action_chunk=HORIZON, denoise_steps=3, use_proprio=True, use_wrist=True)
    policy = build_policy(cfg, ACTION_DIM, ("main", "wrist"), PROPRIO_DIM, seed=0)
    checkpoint = tmp_path_factory.mktemp("pi0") / "iter-000001"
    policy.save_pretrained(str(checkpoint / "policy"))
    save_schema(schema_for_env(("main", "wrist"), PROPRIO_DIM, reads_proprio=policy.reads_proprio),
                checkpoint / "serve_schema.json")
    return load_for_serving(checkpoint)


def _request(seed: int) -> dict:
    rng = np.random.default_rng(seed)
    return {"observation/image": rng.integers(0, 256, (48, 48, 3), dtype=np.uint8),
            "observation/wrist_image": rng.integers(0, 256, (48, 48, 3), dtype=np.uint8),
            "observation/state": rng.standard_normal(PROPRIO_DIM), "prompt": f"push the cube {seed}"}


def _direct(policy, request: dict) -> np.ndarray:
    obs = {"images": {"main": request["observation/image"][None], "wrist": request["observation/wrist_image"][None]},
           "proprio": np.asarray(request["observation/state"], np.float32)[None], "instruction": [request["prompt"]]}
    return policy.act(obs, mode="greedy").actions[0]


def test_pi0_server_answers_whole_chunks(pi0_loaded):
    assert pi0_loaded.family == "pi0" and pi0_loaded.schema.state_required
    with ServerThread(pi0_loaded.server(ServeConfig(port=0))) as server:
        client = WebsocketClientPolicy(host="127.0.0.1", port=server.port)
        assert client.get_server_metadata()["policy"] == {"family": "pi0", "action_dim": ACTION_DIM,
                                                          "action_chunk": HORIZON}
        answers = [client.infer(_request(seed))["actions"] for seed in (0, 1)]
        for seed, answer in zip((0, 1), answers):
            assert answer.shape == (HORIZON, ACTION_DIM) and answer.dtype == np.float32
            np.testing.assert_array_equal(answer, _direct(pi0_loaded.policy, _request(seed)))
        assert not np.allclose(answers[0], answers[1])  # the chunk depends on the observation
        assert not np.allclose(answers[0][0], answers[0][1])  # and its H actions differ
        with pytest.raises(RuntimeError, match="observation/state"):
            client.infer({k: v for k, v in _request(2).items() if k != "observation/state"})


def test_pi0_requests_batched_together_get_their_own_chunks(pi0_loaded):
    requests = [_request(10 + i) for i in range(3)]
    with ServerThread(pi0_loaded.server(ServeConfig(port=0, batch_window_ms=1500, max_batch_size=4))) as server:
        clients = [PolicyClient(server.uri) for _ in requests]
        try:
            for client, request in zip(clients, requests):
                client.send(request)
            answers = [client.receive() for client in clients]
        finally:
            for client in clients:
                client.close()
    assert [a["server_timing"]["batch_size"] for a in answers] == [3, 3, 3]
    for answer, request in zip(answers, requests):
        # one batched ODE chain per row: the same chunk as alone up to float rounding of the batch size
        np.testing.assert_allclose(answer["actions"], _direct(pi0_loaded.policy, request), atol=1e-5, rtol=0)


def test_pi0_server_refuses_a_request_without_the_wrist_camera(pi0_loaded):
    with ServerThread(pi0_loaded.server(ServeConfig(port=0))) as server, PolicyClient(server.uri) as client:
        with pytest.raises(ServerError, match="observation/wrist_image"):
            client.infer({k: v for k, v in _request(3).items() if k != "observation/wrist_image"})
