"""Simulator backends behind one vectorised env contract (`simulators.base.VectorEnv`).

`make_env(EnvConfig)` builds a backend by its registered name (`ENV_BACKENDS`): "maniskill"
(ManiSkill3 on CPU physics, one env per worker process) and "libero" (LIBERO on robosuite/MuJoCo,
one worker process per env). Importing this package does not import any simulator.
"""

from simulators.registry import ENV_BACKENDS, load_builtin_backends, make_env

__all__ = ["ENV_BACKENDS", "load_builtin_backends", "make_env"]
