"""Strict conversion of plain dicts (from YAML and `key=value` overrides) into typed dataclasses.

Every config section is a dataclass with a default and a one-line doc beside each field. This
module turns nested dicts into those dataclasses and refuses anything it cannot place: an unknown
key, a value of the wrong type, a missing required field. Errors name the dotted key and, when
known, the file it came from, so a user can fix the right line.
"""

from __future__ import annotations

import dataclasses
import re
import types
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

_SCIENTIFIC = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")
"""Scientific notation without a dot, which YAML 1.1 (PyYAML) leaves a string."""


class ConfigError(ValueError):
    """A config value that cannot be accepted; the message names the key and the fix.

    `key` is the dotted key at fault when one is known, so a loader can say which file set it.
    """

    def __init__(self, message: str, key: str | None = None) -> None:
        super().__init__(message)
        self.key = key


def _type_name(tp: Any) -> str:
    if get_origin(tp) is Literal:
        return " | ".join(repr(a) for a in get_args(tp))
    if get_origin(tp) in (Union, types.UnionType):
        return " | ".join(_type_name(a) for a in get_args(tp))
    return getattr(tp, "__name__", str(tp))


def _convert(tp: Any, value: Any, key: str, source: str) -> Any:
    """Check (and lightly coerce: int -> float, list -> tuple) `value` against the annotation `tp`."""
    where = f"{source}: " if source else ""
    origin = get_origin(tp)
    if tp is Any:
        return value
    if origin is Literal:
        if value not in get_args(tp):
            raise ConfigError(f"{where}{key}={value!r} is not one of {_type_name(tp)}", key=key)
        return value
    if origin in (Union, types.UnionType):
        args = get_args(tp)
        if value is None:
            if type(None) in args:
                return None
            raise ConfigError(f"{where}{key} must not be null (expected {_type_name(tp)})", key=key)
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(arg, value, key, source)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(f"{where}{key}={value!r} does not match {_type_name(tp)}", key=key)
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            raise ConfigError(f"{where}{key} must be a mapping of {tp.__name__} fields, got {value!r}", key=key)
        return from_dict(tp, value, prefix=key, source=source)
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}{key} must be a list, got {value!r}", key=key)
        args = get_args(tp)
        if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
            items = [_convert(args[0], v, f"{key}[{i}]", source) for i, v in enumerate(value)]
        elif origin is tuple and args:
            if len(args) != len(value):
                raise ConfigError(f"{where}{key} must have {len(args)} items, got {len(value)}", key=key)
            items = [_convert(a, v, f"{key}[{i}]", source) for i, (a, v) in enumerate(zip(args, value))]
        else:
            elem = args[0] if args else Any
            items = [_convert(elem, v, f"{key}[{i}]", source) for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}{key} must be a mapping, got {value!r}", key=key)
        kt, vt = get_args(tp) or (Any, Any)
        return {_convert(kt, k, f"{key}.<key>", source): _convert(vt, v, f"{key}.{k}", source) for k, v in value.items()}
    if tp is float:
        if isinstance(value, str) and _SCIENTIFIC.fullmatch(value.strip()):
            value = float(value)  # YAML 1.1 reads "3e-4" (no dot) as a string
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}{key}={value!r} must be a number", key=key)
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}{key}={value!r} must be an integer", key=key)
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}{key}={value!r} must be true or false", key=key)
        return value
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}{key}={value!r} must be a string", key=key)
        return value
    if isinstance(tp, type) and not isinstance(value, tp):
        raise ConfigError(f"{where}{key}={value!r} must be of type {_type_name(tp)}", key=key)
    return value


def from_dict(cls: type, data: dict[str, Any], prefix: str = "", source: str = "") -> Any:
    """Build dataclass `cls` from `data`, refusing unknown keys and values of the wrong type.

    `prefix` is the dotted path of this section (for messages); `source` names the file(s) the
    values came from. Errors raised in `__post_init__` checks are re-raised with the same context.
    """
    where = f"{source}: " if source else ""
    if not isinstance(data, dict):
        raise ConfigError(f"{where}{prefix or 'config'} must be a mapping, got {data!r}")
    choose = getattr(cls, "choose", None)  # a section whose class one of its keys picks (config/choice.py)
    if choose is not None:
        try:
            cls = choose(data)
        except ConfigError as exc:
            raise ConfigError(f"{where}{exc}", key=exc.key) from None
    hints = get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = [k for k in data if k not in fields]
    if unknown:
        dotted = ", ".join(f"{prefix + '.' if prefix else ''}{k}" for k in unknown)
        known = ", ".join(sorted(fields))
        first = f"{prefix + '.' if prefix else ''}{unknown[0]}"
        hint = getattr(cls, "unknown_key_hint", None)
        raise ConfigError(
            f"{where}unknown key {dotted} (known keys in {prefix or 'the top level'}: {known})"
            f"{hint(unknown[0]) if hint else ''}", key=first
        )
    kwargs = {}
    for name, value in data.items():
        kwargs[name] = _convert(hints[name], value, f"{prefix + '.' if prefix else ''}{name}", source)
    missing = [
        n
        for n, f in fields.items()
        if n not in kwargs and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        dotted = ", ".join(f"{prefix + '.' if prefix else ''}{n}" for n in missing)
        raise ConfigError(f"{where}missing required key {dotted}", key=prefix or None)
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as exc:  # ConfigError from a __post_init__ check included
        raise ConfigError(f"{where}{prefix + ': ' if prefix else ''}{exc}", key=prefix or None) from None


def to_dict(obj: Any) -> Any:
    """The plain-dict form of a config dataclass (tuples become lists), suitable for YAML/JSON."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    return obj


def check(condition: bool, message: str) -> None:
    """Cross-field validation for `__post_init__`: raise ConfigError(message) when false."""
    if not condition:
        raise ConfigError(message)


__all__ = ["ConfigError", "from_dict", "to_dict", "check"]
