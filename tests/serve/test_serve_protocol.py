"""The websocket protocol end to end on loopback: a client written from the protocol description,
openpi-client's `WebsocketClientPolicy` unchanged, our `PolicyClient`, health check and API key."""

import dataclasses
import urllib.error
import urllib.request

import msgpack
import numpy as np
import pytest
from openpi_client.websocket_client_policy import WebsocketClientPolicy
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from vla_rl.serve import PolicyClient, ServeConfig, ServerError, ServerThread
from vla_rl.serve.schema import schema_for_env

# openpi-client 0.1.2 opens its websocket without a context manager; websockets 17 warns about that
pytestmark = pytest.mark.filterwarnings("ignore:connect.. must be used as a context manager:DeprecationWarning")


def _pack(obj):
    """Protocol description: arrays as {__ndarray__, data, dtype, shape} maps with bytes keys."""
    def default(x):
        if isinstance(x, np.ndarray):
            return {b"__ndarray__": True, b"data": x.tobytes(), b"dtype": x.dtype.str, b"shape": list(x.shape)}
        raise TypeError(type(x))
    return msgpack.packb(obj, default=default)


def _unpack(data):
    def hook(m):
        if b"__ndarray__" in m:
            return np.frombuffer(m[b"data"], dtype=np.dtype(m[b"dtype"])).reshape(m[b"shape"])
        return m
    return msgpack.unpackb(data, object_hook=hook)


def test_raw_protocol_client(server, make_request, direct):
    with connect(server.uri, compression=None, max_size=None, proxy=None) as ws:
        metadata = _unpack(ws.recv())
        assert metadata["policy"]["family"] == "openvla" and metadata["policy"]["action_dim"] == 7
        assert metadata["schema"]["prompt_key"] == "prompt"
        for seed in (0, 1):
            request = make_request(seed)
            ws.send(_pack(request))
            reply = ws.recv()
            assert isinstance(reply, bytes)
            answer = _unpack(reply)
            assert answer["actions"].shape == (1, 7) and answer["actions"].dtype == np.float32
            np.testing.assert_array_equal(answer["actions"], direct(request))
            assert {"infer_ms", "queue_ms", "total_ms", "batch_size"} <= set(answer["server_timing"])
        # an error is a text frame naming the problem, and the connection stays usable
        ws.send("hello")
        assert ws.recv().startswith("error: got a text frame")
        ws.send(_pack({"prompt": "x"}))
        assert "missing image 'observation/image'" in ws.recv()
        ws.send(_pack(make_request(2)))
        np.testing.assert_array_equal(_unpack(ws.recv())["actions"], direct(make_request(2)))


def test_openpi_websocket_client_policy_works_unchanged(server, make_request, direct):
    client = WebsocketClientPolicy(host="127.0.0.1", port=server.port)
    assert client.get_server_metadata()["server"] == "vla-rl"
    request = make_request(3, prompt="put the bowl on the plate")
    request["observation/wrist_image"] = np.zeros((16, 16, 3), np.uint8)  # what the LIBERO example also sends
    answer = client.infer(request)
    np.testing.assert_array_equal(answer["actions"], direct(request))
    with pytest.raises(RuntimeError, match="observation/state has dtype bool"):
        client.infer({**request, "observation/state": np.ones(9, dtype=bool)})
    np.testing.assert_array_equal(client.infer(request)["actions"], direct(request))


def test_openpi_libero_client_on_a_main_camera_checkpoint(loaded, make_request, direct):
    """The LIBERO client's observation, wrist image included, unchanged: the wrist image is dropped and listed as
    ignored in the metadata; a key of no openpi layout is still refused."""
    main_only = dataclasses.replace(loaded, schema=schema_for_env(("main",), len(make_request(0)["observation/state"])))
    with ServerThread(main_only.server(ServeConfig(port=0))) as running:
        client = WebsocketClientPolicy(host="127.0.0.1", port=running.port)
        metadata = client.get_server_metadata()
        assert "observation/wrist_image" in metadata["ignored_keys"]
        assert [c["key"] for c in metadata["schema"]["cameras"]] == ["observation/image"]
        request = make_request(7)
        request["observation/wrist_image"] = np.full_like(request["observation/image"], 255)
        np.testing.assert_array_equal(client.infer(request)["actions"], direct(request))
        with pytest.raises(RuntimeError, match=r"unknown request key\(s\) \['observation/wrist_rgb'\]"):
            client.infer({**request, "observation/wrist_rgb": request["observation/wrist_image"]})
        np.testing.assert_array_equal(client.infer(request)["actions"], direct(request))


def test_policy_client_and_its_errors(server, make_request, direct):
    with PolicyClient(server.uri) as client:
        assert client.schema().cameras[0].key == "observation/image"
        np.testing.assert_array_equal(client.infer(make_request(4))["actions"], direct(make_request(4)))
        with pytest.raises(ServerError, match=r"unknown request key\(s\) \['observation/images'\]"):
            client.infer({**make_request(4), "observation/images": np.zeros((4, 4, 3), np.uint8)})


def test_health_endpoint(server):
    base = server.uri.replace("ws://", "http://")
    with urllib.request.urlopen(base + "/healthz", timeout=5) as response:
        assert response.status == 200 and response.read() == b"OK\n"
    with pytest.raises(urllib.error.HTTPError) as err:  # plain HTTP elsewhere is not a websocket upgrade
        urllib.request.urlopen(base + "/", timeout=5)
    assert err.value.code == 426


def test_api_key_accepted_and_refused(loaded, make_request, direct):
    with ServerThread(loaded.server(ServeConfig(port=0, api_key="s3cret"))) as running:
        good = WebsocketClientPolicy(host=running.uri, api_key="s3cret")
        np.testing.assert_array_equal(good.infer(make_request(5))["actions"], direct(make_request(5)))
        with PolicyClient(running.uri, api_key="s3cret") as ours:
            np.testing.assert_array_equal(ours.infer(make_request(5))["actions"], direct(make_request(5)))
        for key in (None, "wrong", "s3cre", "s3cret2"):
            with pytest.raises(InvalidStatus) as err:
                WebsocketClientPolicy(host=running.uri, api_key=key)
            assert err.value.response.status_code == 401
            assert b"Api-Key" in err.value.response.body
        with urllib.request.urlopen(running.uri.replace("ws://", "http://") + "/healthz", timeout=5) as response:
            assert response.status == 200  # health needs no key
        np.testing.assert_array_equal(good.infer(make_request(6))["actions"], direct(make_request(6)))
