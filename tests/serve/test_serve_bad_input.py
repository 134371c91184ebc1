"""Bad input over the network: each case gets an error naming the problem, the connection stays up,
other clients are unaffected; oversized messages; a bounded fuzz of random and truncated messages."""

import msgpack
import numpy as np
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from vla_rl.serve import PolicyClient, ServeConfig, ServerError, ServerThread
from vla_rl.serve.wire import encode

LIMIT_MB = 0.05  # 52 KB: a 32x32 request is ~3 KB


@pytest.fixture(scope="module")
def small_server(loaded):
    with ServerThread(loaded.server(ServeConfig(port=0, max_message_mb=LIMIT_MB, batch_window_ms=1))) as running:
        yield running


def _raw(uri):
    ws = connect(uri, compression=None, max_size=None, proxy=None).__enter__()  # the form every websockets version accepts
    ws.recv()  # metadata
    return ws


CASES = [
    ("missing camera", lambda r: {k: v for k, v in r.items() if k != "observation/image"}, "missing image 'observation/image'"),
    ("float image", lambda r: {**r, "observation/image": r["observation/image"].astype(np.float32)}, "has dtype float32"),
    ("image shape", lambda r: {**r, "observation/image": r["observation/image"][..., :2]}, "has shape (32, 32, 2)"),
    ("batched image", lambda r: {**r, "observation/image": r["observation/image"][None]}, "has shape (1, 32, 32, 3)"),
    ("nan state", lambda r: {**r, "observation/state": np.full(9, np.nan)}, "non-finite"),
    ("inf state", lambda r: {**r, "observation/state": np.array([np.inf] + [0.0] * 8)}, "non-finite"),
    ("unknown key", lambda r: {**r, "action": np.zeros(7)}, "unknown request key(s) ['action']"),
    ("prompt type", lambda r: {**r, "prompt": b"bytes"}, "'prompt' must be a string"),
    ("list request", lambda r: [r["prompt"]], "msgpack map"),
]


@pytest.mark.parametrize("name, mutate, words", CASES, ids=[c[0] for c in CASES])
def test_bad_request_names_the_problem_and_connection_survives(small_server, make_request, direct, name, mutate, words):
    with PolicyClient(small_server.uri) as client:
        with pytest.raises(ServerError) as err:
            client.infer(mutate(make_request(40)))
        assert str(err.value).startswith("error: ") and words in str(err.value)
        np.testing.assert_array_equal(client.infer(make_request(41))["actions"], direct(make_request(41)))


def test_garbage_and_oversized_messages(small_server, make_request, direct):
    bystander = PolicyClient(small_server.uri)
    ws = _raw(small_server.uri)
    try:
        for garbage, words in [(b"\xc1\xff\x00garbage", "not valid msgpack"), (b"", "not valid msgpack"),
                               (encode(make_request(42)) + b"\x00", "trailing bytes")]:
            ws.send(garbage)
            assert words in ws.recv()
        big = {**make_request(42), "observation/image": np.zeros((160, 160, 3), np.uint8)}  # ~77 KB > 52 KB
        ws.send(encode(big))
        assert "exceeds the limit of 52428 bytes" in ws.recv()
        ws.send(encode(make_request(43)))
        assert isinstance(ws.recv(), bytes)
        # beyond 4x the limit the message is never buffered: the connection is closed with 1009
        ws.send(b"\x00" * (5 * 52428))
        with pytest.raises(ConnectionClosed) as err:
            ws.recv()
        assert err.value.rcvd is not None and err.value.rcvd.code == 1009
        np.testing.assert_array_equal(bystander.infer(make_request(44))["actions"], direct(make_request(44)))
    finally:
        ws.close()
        bystander.close()


def _fuzz_messages(valid: bytes, rng: np.random.Generator, count: int):
    """Random bytes, truncations and byte flips of a valid request, and random msgpack structures."""
    for i in range(count):
        kind = i % 4
        if kind == 0:
            yield rng.integers(0, 256, rng.integers(1, 200), dtype=np.uint8).tobytes()
        elif kind == 1:
            yield valid[: rng.integers(0, len(valid))]
        elif kind == 2:
            data = bytearray(valid)
            for pos in rng.integers(0, 200, 3):  # the header region: keys, dtype strings, shapes, lengths
                data[pos] = rng.integers(0, 256)
            yield bytes(data)
        else:
            leaf = [None, True, 3, -2**40, 1.5, "s", b"b", [1, 2], {"k": 1}, {b"__ndarray__": True}]
            obj = {str(rng.integers(0, 5)): leaf[rng.integers(0, len(leaf))] for _ in range(3)}
            obj[["prompt", "observation/image", "observation/state"][i % 3]] = leaf[rng.integers(0, len(leaf))]
            yield msgpack.packb(obj)


def test_fuzz_random_and_truncated_messages(small_server, make_request, direct):
    rng = np.random.default_rng(0)
    valid = encode(make_request(45))
    ws = _raw(small_server.uri)
    answered = errors = 0
    try:
        for message in _fuzz_messages(valid, rng, 240):
            ws.send(message)
            reply = ws.recv(timeout=30)
            answered += 1
            if isinstance(reply, str):
                errors += 1
                assert reply.startswith("error: ") and len(reply) < 2000
            else:
                assert msgpack.unpackb(reply, strict_map_key=False).keys() == {"actions", "server_timing"}
        assert answered == 240 and errors >= 200
        ws.send(valid)
        assert isinstance(ws.recv(), bytes)
    finally:
        ws.close()
    with PolicyClient(small_server.uri) as other:
        np.testing.assert_array_equal(other.infer(make_request(46))["actions"], direct(make_request(46)))
