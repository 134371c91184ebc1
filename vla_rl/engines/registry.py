"""Registry of training engines: `placement.engine` -> a builder `(config, policy) -> engine`.

An engine steps a policy's trainable parameters: `step(loss) -> metrics`, `state_dict()` /
`load_state_dict()` for checkpoints, `offload()` / `onload()` of optimizer state between phases.
"""

from __future__ import annotations

import importlib

from vla_rl.registry import Registry

ENGINES: Registry = Registry("training engine")

ENGINE_MODULES = {"single": "vla_rl.engines.single", "fsdp2": "vla_rl.engines.fsdp2"}
"""Engine name -> module whose import registers it."""


def build_engine(config, policy):
    """The engine `config.placement.engine` for `policy`, with the optimizer settings of `config.algorithm`."""
    name = config.placement.engine
    if name in ENGINE_MODULES:
        importlib.import_module(ENGINE_MODULES[name])
    return ENGINES.get(name)(config, policy)
