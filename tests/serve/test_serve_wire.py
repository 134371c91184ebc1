"""The msgpack-numpy wire format: byte-compatible with openpi-client, and safe on untrusted input."""

import msgpack
import numpy as np
import pytest
from openpi_client import msgpack_numpy as openpi

from vla_rl.serve.wire import WireError, decode, encode

ARRAYS = [
    np.arange(24, dtype=np.uint8).reshape(2, 3, 4),
    np.linspace(-1, 1, 7, dtype=np.float32),
    np.array([[1.5, -2.25]], dtype=np.float64),
    np.array([True, False]),
    np.zeros((0, 3), dtype=np.int64),
    np.arange(6, dtype=">i4"),  # big-endian survives the round trip
]


@pytest.mark.parametrize("array", ARRAYS, ids=lambda a: f"{a.dtype.str}{a.shape}")
def test_arrays_cross_decode_with_openpi_client(array):
    message = {"a": array, "nested": {"b": [array, "text", 3]}, "s": np.float32(0.5)}
    for packed in (encode(message), openpi.packb(message)):
        ours, theirs = decode(packed), openpi.unpackb(packed)
        for got in (ours, theirs):
            np.testing.assert_array_equal(got["a"], array)
            assert got["a"].dtype == array.dtype and got["a"].shape == array.shape
            np.testing.assert_array_equal(got["nested"]["b"][0], array)
            assert got["nested"]["b"][1:] == ["text", 3]
            assert got["s"] == np.float32(0.5) and got["s"].dtype == np.float32


def test_non_contiguous_arrays_are_sent_in_c_order():
    a = np.arange(12, dtype=np.float32).reshape(3, 4).T
    np.testing.assert_array_equal(openpi.unpackb(encode({"a": a}))["a"], a)


def _ndarray(dtype, shape, data):
    return msgpack.packb({"x": {b"__ndarray__": True, b"data": data, b"dtype": dtype, b"shape": shape}})


@pytest.mark.parametrize(
    "packed, words",
    [
        (_ndarray("|O", [1], b"\0" * 8), "not allowed"),
        (_ndarray("<c8", [1], b"\0" * 8), "not allowed"),
        (_ndarray("|V4", [1], b"\0" * 4), "not allowed"),
        (_ndarray("not-a-dtype", [1], b"\0"), "not a numpy dtype"),
        (_ndarray("<f4", [4], b"\0" * 8), "needs 16 bytes, got 8"),
        (_ndarray("<f4", [-1], b""), "non-negative"),
        (_ndarray("<f4", [2**40, 2**40], b""), "needs"),
        (_ndarray("<f4", "22", b"\0" * 8), "shape"),
        (_ndarray("|u1", [1] * 20, b"\0"), "at most"),
        (msgpack.packb({"x": 1}) + b"\x01", "trailing bytes"),
        (b"\xc1", "not valid msgpack"),
        (msgpack.packb({"x": 1})[:-1], "not valid msgpack"),
        (msgpack.packb({"x": {b"__npgeneric__": True, b"data": "str", b"dtype": "<f4"}}), "non-numeric"),
    ],
)
def test_malformed_arrays_and_bytes_raise_wire_error(packed, words):
    with pytest.raises(WireError, match=words):
        decode(packed)


def test_size_limit_is_checked_before_parsing():
    with pytest.raises(WireError, match="exceeds the limit of 10 bytes"):
        decode(b"\x00" * 11, max_bytes=10)


def test_encode_refuses_object_arrays_like_openpi():
    with pytest.raises(TypeError, match="object"):
        encode({"x": np.array([object()])})
