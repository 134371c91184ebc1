"""Batching: concurrent clients share one policy call, and each gets the answer to its own observation."""

import threading

import numpy as np
import pytest

from vla_rl.serve import PolicyClient, ServeConfig, ServerError, ServerThread


@pytest.fixture(scope="module")
def batching_server(loaded):
    """A long window, so requests sent together are certain to meet in one batch."""
    with ServerThread(loaded.server(ServeConfig(port=0, batch_window_ms=1500, max_batch_size=4))) as running:
        yield running


def test_concurrent_clients_get_their_own_actions(batching_server, make_request, direct):
    prompts = ["pick up the cube", "push the cube left", "stack it", "open the drawer", "lift", "close the lid"]
    requests = [make_request(10 + i, prompt=p) for i, p in enumerate(prompts)]
    clients = [PolicyClient(batching_server.uri) for _ in requests]
    try:
        for client, request in zip(clients, requests):  # all out before any answer is read
            client.send(request)
        answers = [client.receive() for client in clients]
    finally:
        for client in clients:
            client.close()
    expected = [direct(r) for r in requests]
    assert len({e.tobytes() for e in expected}) >= 4, "a swap of answers between clients must be detectable"
    for answer, want in zip(answers, expected):
        np.testing.assert_array_equal(answer["actions"], want)
    sizes = sorted(a["server_timing"]["batch_size"] for a in answers)
    assert sizes == [2, 2, 4, 4, 4, 4]  # six requests, batches of at most four


def test_threads_and_mixed_shapes(batching_server, make_request, direct):
    """Clients in threads, two image sizes (batched separately) and one bad request among them."""
    requests = [make_request(20 + i, size=32 if i % 2 else 24) for i in range(6)]
    requests.append({"prompt": "no image"})
    results: dict[int, object] = {}

    def worker(i: int) -> None:
        with PolicyClient(batching_server.uri) as client:
            try:
                results[i] = client.infer(requests[i])["actions"]
            except ServerError as exc:
                results[i] = exc

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(requests))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    for i in range(6):
        np.testing.assert_array_equal(results[i], direct(requests[i]))
    assert "missing image 'observation/image'" in str(results[6])


def test_a_request_the_policy_rejects_fails_alone(loaded, make_request, direct):
    """A prompt longer than the model's prompt budget passes the schema but breaks the policy call:
    the batch is retried one request at a time, so only that client sees the error."""
    with ServerThread(loaded.server(ServeConfig(port=0, batch_window_ms=1500))) as running:
        requests = [make_request(30), make_request(31, prompt="z" * 400), make_request(32)]
        clients = [PolicyClient(running.uri) for _ in requests]
        try:
            for client, request in zip(clients, requests):
                client.send(request)
            first, third = clients[0].receive(), clients[2].receive()
            with pytest.raises(ServerError, match="the policy failed on this observation: ValueError: .*max_prompt_tokens"):
                clients[1].receive()
            np.testing.assert_array_equal(first["actions"], direct(requests[0]))
            np.testing.assert_array_equal(third["actions"], direct(requests[2]))
            np.testing.assert_array_equal(clients[1].infer(make_request(33))["actions"], direct(make_request(33)))
        finally:
            for client in clients:
                client.close()
        assert running.server.batcher.stats.failed == 1
