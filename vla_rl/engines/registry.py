"""Registry of training engines: `placement.engine` -> a builder `(config, policy) -> engine`.

An engine steps a policy's trainable parameters: `step(loss) -> metrics`, `state_dict()` /
`load_state_dict()` for checkpoints, `offload()` / `onload()` of optimizer state between phases,
`full_model_state()` / `load_model_state()` for whole weights (the contract in full:
`vla_rl.engines.base`). Distributed engines train one actor per rank of a `torch.distributed`
process group (launched with torchrun; `placement/data_parallel.py`).
"""

from __future__ import annotations

import importlib

from vla_rl.registry import Registry

ENGINES: Registry = Registry("training engine")

ENGINE_MODULES = {"single": "vla_rl.engines.single", "fsdp2": "vla_rl.engines.fsdp2",
                  "deepspeed": "vla_rl.engines.deepspeed"}
"""Engine name -> module whose import registers it."""

DISTRIBUTED_ENGINES = frozenset({"fsdp2", "deepspeed"})
"""Engines whose actor is one process per rank of a torch.distributed group (data parallel)."""


def torchrun_command(engine: str, args: list[str] | None = None, nproc: int = 2) -> str:
    """The command line that launches `vla-rl train` with `args` as `nproc` ranks of `engine`."""
    rest = [a for a in (args or []) if not a.startswith("placement.engine=")]
    return " ".join(["torchrun", f"--nproc-per-node {nproc}", "-m vla_rl.cli.train", *rest,
                     f"placement.engine={engine}"])


def require_process_group(engine: str) -> None:
    """ConfigError (with the launch command) unless torch.distributed is initialised."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return
    from vla_rl.config.core import ConfigError

    raise ConfigError(f"placement.engine={engine} trains one actor per rank of a torch.distributed process group, "
                      f"and none is initialised here: launch the ranks with torchrun, e.g. "
                      f"`{torchrun_command(engine, ['[RECIPE]', '[key=value ...]'])}` (docs/placement.md), "
                      "or use placement.engine=single", key="placement.engine")


def build_engine(config, policy):
    """The engine `config.placement.engine` for `policy`, with the optimizer settings of `config.algorithm`."""
    name = config.placement.engine
    if name in ENGINE_MODULES:
        importlib.import_module(ENGINE_MODULES[name])
    return ENGINES.get(name)(config, policy)
