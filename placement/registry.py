"""Registries of the placement layer and `build_workers`, the runner's one entry point.

- `CLUSTERS`: backend name -> function(PlacementConfig) -> `Cluster` (connecting to it if needed).
- `PLACEMENTS`: "backend/mode" (e.g. "local/hybrid") -> function(config, plan) -> workers.
A new backend is one module registering both, listed in `BACKEND_MODULES`.
"""

from __future__ import annotations

import importlib

from vla_rl.registry import Registry

PLACEMENTS: Registry = Registry("placement (backend/mode)")
CLUSTERS: Registry = Registry("placement backend")

BACKEND_MODULES = {"local": "placement.local", "ray": "placement.ray_backend"}
"""Backend name -> module whose import registers its cluster detector and builders."""


def _load(backend: str) -> None:
    module = BACKEND_MODULES.get(backend)
    if module is not None:
        importlib.import_module(module)


def plan_for(config):
    """The plan of `config` on its backend's cluster (connecting to a Ray cluster if the backend is ray)."""
    from placement.plan import make_plan

    _load(config.placement.backend)
    return make_plan(config, CLUSTERS.get(config.placement.backend)(config.placement))


def _build_plan(config):
    plan = plan_for(config)
    return PLACEMENTS.get(f"{plan.backend}/{plan.mode}")(config, plan)


def build_workers(config):
    """The workers that carry out the plan of `config` (env, rollout, actor; see placement/plan.py); with a
    distributed engine, this rank's share of the run (placement/data_parallel.py)."""
    from vla_rl.engines.registry import DISTRIBUTED_ENGINES

    if config.placement.engine in DISTRIBUTED_ENGINES:
        from placement.data_parallel import build_data_parallel

        return build_data_parallel(config, _build_plan)
    return _build_plan(config)
