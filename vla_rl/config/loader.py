"""Load a recipe: YAML files (with `extends:`), then `key=value` overrides, into a validated `Config`.

- `extends: base.yaml` (a path relative to the file, or a list of them) merges the named recipes
  first; the extending file's keys win, nested mappings merge key by key.
- `algorithm.clip_ratio=0.2` sets one nested key; the value is parsed as YAML (`true`, `3`, `[a, b]`,
  `null`), so types are checked like the file's.
- Any problem is a `ConfigError` whose message names the file (and line, for malformed YAML) or the
  command-line override that set the offending key.
- A file or override that changes `model.family` or `env.backend` drops the keys it inherited for the
  previous family or backend (a LIBERO recipe may extend a ManiSkill one); keys it sets itself are checked.
- Older layouts still load: a run config saved before the per-family and per-backend sections, and
  keys under their old names (`vla_rl/config/migrate.py`).
"""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path
from typing import Any, Sequence

import yaml

from vla_rl.config.core import ConfigError, from_dict
from vla_rl.config.migrate import migrate_layout_1, rename_keys
from vla_rl.config.schema import CHOICE_SECTIONS, Config

CONFIG_DIR = Path(__file__).resolve().parents[2] / "configs"
DEFAULT_RECIPE = "quickstart.yaml"
COMMAND_LINE = "command line"


def resolve_recipe(name: str | None) -> Path:
    """A recipe path: an existing file, or a name under configs/ (with or without `.yaml`)."""
    if name is None:
        name = DEFAULT_RECIPE
    for candidate in (Path(name), CONFIG_DIR / name, CONFIG_DIR / f"{name}.yaml"):
        if candidate.is_file():
            return candidate.resolve()
    available = ", ".join(sorted(p.stem for p in CONFIG_DIR.glob("*.yaml")))
    raise ConfigError(f"recipe {name!r} not found (neither a file nor in {CONFIG_DIR}); available: {available}")


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read recipe ({exc.strerror})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{where}: malformed YAML: {problem}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a recipe must be a mapping of sections, got {type(data).__name__}")
    return data


def _switch_choices(data: dict[str, Any], top: dict[str, Any]) -> None:
    """Where `top` changes a section's family or backend, drop the keys of `data`'s section the new one lacks.

    Those keys were set for the previous choice (e.g. `env.mesh_detail` in a ManiSkill recipe that a
    LIBERO recipe extends); a key of another choice set by `top` itself stays, and is refused on load.
    """
    for section, base in CHOICE_SECTIONS.items():
        new, old = top.get(section), data.get(section)
        if not (isinstance(new, dict) and isinstance(old, dict) and base.selector in new):
            continue
        if new[base.selector] == old.get(base.selector, getattr(base, base.selector)):
            continue
        try:
            keys = {f.name for f in dataclasses.fields(base.choice_class(new[base.selector]))}
        except ConfigError:
            continue  # an unregistered name is refused on load, with the registered ones
        for key in [k for k in old if k not in keys]:
            del old[key]


def _merge(base: dict, top: dict, sources: dict[str, str], source: str, prefix: str = "") -> dict:
    """Deep-merge `top` into a copy of `base`, recording which source set each dotted key."""
    out = copy.deepcopy(base)
    if not prefix:
        _switch_choices(out, top)
    for key, value in top.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value, sources, source, f"{dotted}.")
        else:
            out[key] = copy.deepcopy(value)
            sources[dotted] = source
            _record_nested(value, sources, source, f"{dotted}.")
    return out


def _record_nested(value: Any, sources: dict[str, str], source: str, prefix: str) -> None:
    if isinstance(value, dict):
        for key, sub in value.items():
            sources[f"{prefix}{key}"] = source
            _record_nested(sub, sources, source, f"{prefix}{key}.")


def load_recipe_dict(path: Path, sources: dict[str, str], _seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """The merged plain dict of a recipe and everything it extends."""
    if path in _seen:
        chain = " -> ".join(str(p) for p in (*_seen, path))
        raise ConfigError(f"{path}: `extends` forms a cycle: {chain}")
    data = _read_yaml(path)
    parents = data.pop("extends", [])
    if isinstance(parents, str):
        parents = [parents]
    if not isinstance(parents, list) or not all(isinstance(p, str) for p in parents):
        raise ConfigError(f"{path}: `extends` must be a file name or a list of file names")
    merged: dict[str, Any] = {}
    for parent in parents:
        parent_path = (path.parent / parent).resolve()
        if not parent_path.is_file():
            raise ConfigError(f"{path}: extends {parent!r}, but {parent_path} does not exist")
        merged = _merge(merged, load_recipe_dict(parent_path, sources, (*_seen, path)), sources, str(parent_path))
    return _merge(merged, data, sources, str(path))


def parse_override(text: str) -> tuple[list[str], Any]:
    """`a.b.c=value` -> (["a", "b", "c"], parsed value)."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key or any(not part for part in key.split(".")):
        raise ConfigError(f"override {text!r} is not of the form section.key=value (e.g. algorithm.clip_ratio=0.2)")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return key.split("."), value


def apply_overrides(data: dict[str, Any], overrides: Sequence[str], sources: dict[str, str]) -> dict[str, Any]:
    out = copy.deepcopy(data)
    parsed = [(text, *parse_override(text)) for text in overrides]
    selectors = {(section, base.selector) for section, base in CHOICE_SECTIONS.items()}
    parsed.sort(key=lambda item: tuple(item[1]) not in selectors)  # a family or backend first: see _switch_choices
    for text, parts, value in parsed:
        if tuple(parts) in selectors:
            _switch_choices(out, {parts[0]: {parts[1]: value}})
        node = out
        for i, part in enumerate(parts[:-1]):
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"{COMMAND_LINE}: {'.'.join(parts[: i + 1])} is not a section, cannot set {text!r}")
            node = child
        node[parts[-1]] = value
        sources[".".join(parts)] = COMMAND_LINE
        _record_nested(value, sources, COMMAND_LINE, ".".join(parts) + ".")
    return out


def _source_of(key: str | None, sources: dict[str, str], default: str) -> str:
    while key:
        if key in sources:
            return sources[key]
        key = key.rpartition(".")[0]
    return default


def load_config(recipe: str | None = None, overrides: Sequence[str] = ()) -> Config:
    """Load and validate a recipe (default: the quickstart) with command-line overrides applied."""
    path = resolve_recipe(recipe)
    sources: dict[str, str] = {}
    data = load_recipe_dict(path, sources)
    try:
        data = migrate_layout_1(data)  # before the overrides: a saved run loads as it ran
    except ConfigError as exc:  # (an unregistered family or backend)
        raise ConfigError(f"{path}: {exc}", key=exc.key) from None
    data = rename_keys(apply_overrides(data, overrides, sources))
    try:
        return from_dict(Config, data)
    except ConfigError as exc:
        raise ConfigError(f"{_source_of(exc.key, sources, str(path))}: {exc}", key=exc.key) from None


def dump_config(config: Config) -> str:
    """The fully resolved config as YAML (written next to every run's outputs)."""
    from vla_rl.config.core import to_dict

    return yaml.safe_dump(to_dict(config), sort_keys=False)
