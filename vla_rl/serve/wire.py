"""The wire format of the robot protocol: msgpack with numpy arrays, as openpi-client speaks it.

A numpy array travels as a msgpack map with bytes keys
    {b"__ndarray__": True, b"data": <raw bytes, C order>, b"dtype": <dtype.str, e.g. "|u1", "<f4">,
     b"shape": [d0, d1, ...]}
and a numpy scalar as {b"__npgeneric__": True, b"data": <python value>, b"dtype": <dtype.str>}.
Everything else is plain msgpack (str keys, str / int / float / list / map values).

`decode` is written for untrusted input: it accepts only plain numeric and bool dtypes, checks that
the byte count matches shape x itemsize, bounds nesting, and turns every failure into a
`WireError` whose message says what was wrong, so the server can answer it instead of crashing.
"""

from __future__ import annotations

from typing import Any

import msgpack
import numpy as np

ALLOWED_DTYPE_KINDS = "biuf"
"""bool, signed and unsigned integers, floats (openpi-client refuses object, void and complex too)."""
MAX_DIMS = 8
"""Most dimensions an incoming array may have."""


class WireError(ValueError):
    """A message that is not valid msgpack-numpy; the text says what is wrong."""


def _pack_default(obj: Any) -> Any:
    if isinstance(obj, (np.ndarray, np.generic)) and obj.dtype.kind not in ALLOWED_DTYPE_KINDS:
        raise TypeError(f"cannot send numpy dtype {obj.dtype} (only bool, integer and float arrays)")
    if isinstance(obj, np.ndarray):
        arr = np.ascontiguousarray(obj)
        return {b"__ndarray__": True, b"data": arr.tobytes(), b"dtype": arr.dtype.str, b"shape": list(arr.shape)}
    if isinstance(obj, np.generic):
        return {b"__npgeneric__": True, b"data": obj.item(), b"dtype": obj.dtype.str}
    raise TypeError(f"cannot send object of type {type(obj).__name__}")


def encode(obj: Any) -> bytes:
    """msgpack bytes of `obj` (nested dicts/lists of str, numbers, numpy arrays and scalars)."""
    return msgpack.packb(obj, default=_pack_default, use_bin_type=True)


def _dtype(raw: Any) -> np.dtype:
    if isinstance(raw, bytes):
        raw = raw.decode("ascii", errors="replace")
    if not isinstance(raw, str):
        raise WireError(f"array dtype must be a string such as '<f4', got {type(raw).__name__}")
    try:
        dtype = np.dtype(raw)
    except (TypeError, ValueError):
        raise WireError(f"array dtype {raw!r} is not a numpy dtype") from None
    if dtype.kind not in ALLOWED_DTYPE_KINDS or dtype.fields is not None or dtype.subdtype is not None:
        raise WireError(f"array dtype {raw!r} is not allowed; send bool, integer or float arrays")
    return dtype


def _array(obj: dict) -> np.ndarray:
    dtype = _dtype(obj.get(b"dtype"))
    data, shape = obj.get(b"data"), obj.get(b"shape")
    if not isinstance(data, bytes):
        raise WireError("array data must be bytes (msgpack bin)")
    if not isinstance(shape, (list, tuple)) or len(shape) > MAX_DIMS:
        raise WireError(f"array shape must be a list of at most {MAX_DIMS} sizes, got {shape!r}")
    if not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
        raise WireError(f"array shape {shape!r} must hold non-negative integers")
    count = 1
    for d in shape:
        count *= d
    if count * dtype.itemsize != len(data):
        raise WireError(f"array of shape {tuple(shape)} and dtype {dtype.str} needs {count * dtype.itemsize} bytes, "
                        f"got {len(data)}")
    return np.frombuffer(data, dtype=dtype).reshape(shape)


def _scalar(obj: dict) -> np.generic:
    dtype = _dtype(obj.get(b"dtype"))
    value = obj.get(b"data")
    if not isinstance(value, (bool, int, float)):
        raise WireError(f"numpy scalar of dtype {dtype.str} has a non-numeric value of type {type(value).__name__}")
    try:
        return dtype.type(value)
    except (OverflowError, ValueError, TypeError) as exc:
        raise WireError(f"numpy scalar {value!r} does not fit dtype {dtype.str}: {exc}") from None


def _object_hook(obj: dict) -> Any:
    if b"__ndarray__" in obj:
        return _array(obj)
    if b"__npgeneric__" in obj:
        return _scalar(obj)
    return obj


def decode(data: bytes, max_bytes: int | None = None) -> Any:
    """The object in msgpack-numpy `data`; raises WireError for anything malformed or too large."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise WireError(f"expected binary msgpack, got {type(data).__name__}")
    if max_bytes is not None and len(data) > max_bytes:
        raise WireError(f"message of {len(data)} bytes exceeds the limit of {max_bytes} bytes")
    try:
        return msgpack.unpackb(bytes(data), object_hook=_object_hook, raw=False, strict_map_key=False)
    except WireError:
        raise
    except msgpack.ExtraData:
        raise WireError("message has trailing bytes after one msgpack object; send exactly one map") from None
    except (ValueError, TypeError, msgpack.UnpackException, RecursionError, OverflowError, MemoryError) as exc:
        reason = str(exc) or type(exc).__name__
        raise WireError(f"message is not valid msgpack: {reason}") from None


__all__ = ["ALLOWED_DTYPE_KINDS", "WireError", "decode", "encode"]
