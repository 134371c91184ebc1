"""Where the runs of a sweep execute, in a registry: "local" (one subprocess after another on this
machine) and "ray" (concurrent Ray tasks, each reserving `cpus_per_run` / `gpus_per_run`).

An executor takes the launch requests and two callbacks: `on_start(request)` when a run starts and
`on_done(request, attempt)` in this process as each run ends, in whatever order they end. With Ray
every node must see the same paths (a shared filesystem for the sweep folder, the same Python
environment), since each task starts `vla-rl train` with this interpreter on the run's folder.
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

from vla_rl.config.sweep import ExecutorConfig
from vla_rl.registry import Registry
from vla_rl.sweep.launch import Attempt, LaunchRequest, run_subprocess
from vla_rl.sweep.progress import SweepProgress

OnStart = Callable[[LaunchRequest], None]
OnDone = Callable[[LaunchRequest, Attempt], None]
Executor = Callable[[Sequence[LaunchRequest], ExecutorConfig, SweepProgress, OnStart, OnDone], None]

EXECUTORS: Registry[Executor] = Registry("sweep executor")


@EXECUTORS.register("local")
def run_local(requests: Sequence[LaunchRequest], cfg: ExecutorConfig, progress: SweepProgress, on_start: OnStart,
              on_done: OnDone) -> None:
    """One run after another in this process's subprocesses."""
    for request in requests:
        on_start(request)
        on_done(request, run_subprocess(request, on_sample=progress.poll))


def ray_slots(cfg: ExecutorConfig, resources: dict[str, float]) -> int:
    """How many runs the cluster's resources admit at once (at least 1; capped by max_concurrent)."""
    slots = math.floor(resources.get("CPU", 0) / cfg.cpus_per_run)
    if cfg.gpus_per_run > 0:
        slots = min(slots, math.floor(resources.get("GPU", 0) / cfg.gpus_per_run))
    if slots < 1:
        raise RuntimeError(f"the Ray cluster ({resources.get('CPU', 0)} CPUs, {resources.get('GPU', 0)} GPUs) cannot fit "
                           f"one run of {cfg.cpus_per_run} CPUs and {cfg.gpus_per_run} GPUs; lower "
                           "executor.cpus_per_run / gpus_per_run")
    return min(slots, cfg.max_concurrent) if cfg.max_concurrent else slots


@EXECUTORS.register("ray")
def run_ray(requests: Sequence[LaunchRequest], cfg: ExecutorConfig, progress: SweepProgress, on_start: OnStart,
            on_done: OnDone) -> None:
    """Concurrent runs as Ray tasks; joins `cfg.ray_address` or starts a private Ray on this machine."""
    try:
        import ray
    except ImportError:
        raise RuntimeError("executor.name=ray needs Ray: pip install 'vla-rl[ray]' (or use executor.name=local)") from None
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(address=cfg.ray_address, include_dashboard=False, log_to_driver=False)
    task = ray.remote(num_cpus=cfg.cpus_per_run, num_gpus=cfg.gpus_per_run, max_retries=0)(run_subprocess)
    slots = ray_slots(cfg, ray.cluster_resources())
    pending, in_flight = list(requests), {}
    try:
        while pending or in_flight:
            while pending and len(in_flight) < slots:
                request = pending.pop(0)
                on_start(request)
                in_flight[task.remote(request)] = request
            ready, _ = ray.wait(list(in_flight), num_returns=1, timeout=1.0)
            progress.poll()
            for ref in ready:
                on_done(in_flight.pop(ref), ray.get(ref))
    except BaseException:
        for ref in in_flight:  # interrupts the task: run_subprocess then ends its run's session
            ray.cancel(ref, force=False)
        for ref in in_flight:
            try:
                ray.get(ref, timeout=60)
            except Exception:  # cancelled or failed: nothing to record
                pass
        raise
    finally:
        if started_here:
            ray.shutdown()


__all__ = ["EXECUTORS", "run_local", "run_ray", "ray_slots"]
