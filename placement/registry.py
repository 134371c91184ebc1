"""Registry of placement builders, keyed "backend/mode" (e.g. "local/collocated")."""

from __future__ import annotations

from vla_rl.registry import Registry

PLACEMENTS: Registry = Registry("placement (backend/mode)")


def build_workers(config):
    """The workers for `config.placement` (importing the module that registers it)."""
    import placement.local  # noqa: F401  (registers local/*)

    return PLACEMENTS.get(f"{config.placement.backend}/{config.placement.mode}")(config)
