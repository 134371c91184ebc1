"""Placement: which component runs where, and the workers that carry a plan out.

    plan.py          devices + config -> Plan (mode, device sets, worker counts, pipeline stages)
    cluster.py       the cluster's devices (GPUs or CPU slots) and CPU pinning
    registry.py      build_workers(config): the runner's one entry point (backend/mode registry)
    workers.py       Workers: what the runner gets (env, policy, engine, rollout, phases, weight sync)
    local.py         the local backend (processes on this machine)
    ray_backend.py   the Ray backend (placement groups); ray_env.py: its vectorised env
    rollout_worker.py, rollout_group.py, process_host.py   rollout workers in processes of their own
    weight_sync.py   versioned, checksummed weight payloads from the actor to rollout workers
    replay_env.py    exact env state for checkpoints (reset + replay of the episodes in flight)
"""
