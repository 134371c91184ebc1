"""The registry of environment backends and `make_env`, the one way to build a `VectorEnv` from config.

A backend is a `VectorEnv` subclass with a `from_config(cfg: EnvConfig)` classmethod and a
`task_suites()` classmethod (suite name -> task ids), registered with
`@ENV_BACKENDS.register("name")`. Backend modules import their simulator only inside worker
processes, so importing them here is cheap.
"""

from __future__ import annotations

import importlib

from simulators.base import VectorEnv
from vla_rl.config.core import ConfigError
from vla_rl.config.env import EnvConfig
from vla_rl.registry import Registry

ENV_BACKENDS: Registry[type[VectorEnv]] = Registry("env backend")

BUILTIN_BACKEND_MODULES = ("simulators.maniskill", "simulators.maniskill_gpu", "simulators.libero")
"""Modules whose import registers the built-in backends."""


def load_builtin_backends() -> None:
    """Import the built-in backend modules so that they register themselves."""
    for module in BUILTIN_BACKEND_MODULES:
        importlib.import_module(module)


def make_env(cfg: EnvConfig) -> VectorEnv:
    """Build the vectorised env `cfg` describes (starts its worker processes; close it when done)."""
    load_builtin_backends()
    if cfg.backend not in ENV_BACKENDS:
        raise ConfigError(f"env.backend={cfg.backend!r} has a config section but no simulator registered in "
                          f"ENV_BACKENDS; registered: {ENV_BACKENDS.names()}", key="env.backend")
    return ENV_BACKENDS.get(cfg.backend).from_config(cfg)  # type: ignore[attr-defined]
