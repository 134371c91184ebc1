"""The placement plan: which devices and how many processes each component gets, and the mode.

Input: the cluster's devices (`placement.cluster`) and the config. Output: a `Plan`, printed by
`vla-rl plan` and carried out by a backend's builder (`placement.registry.build_workers`).

Mode rules over the device sets E (env), R (rollout), A (actor):
    collocated     E == R == A; phases take turns on the same devices (offload between them on GPUs);
                   pipeline_stages must be 1 (nothing to overlap with).
    hybrid         E and R disjoint, A contains R (the actor reuses the rollout's devices, usually "all").
    disaggregated  E, R and A pairwise disjoint.
Anything else is a ConfigError that says which set to change. With k = pipeline_stages > 1 the N envs
form k stages of N/k (k must divide N); each stage's envs live in their own env workers so one stage
is simulated while another is inferred.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from placement.cluster import Cluster, detect_cluster
from vla_rl.config.core import ConfigError
from vla_rl.engines.registry import DISTRIBUTED_ENGINES

MODES = ("collocated", "hybrid", "disaggregated")


@dataclass(frozen=True)
class ComponentPlan:
    """Where one component runs."""

    devices: tuple[int, ...]
    """Device indices of the cluster."""
    workers: int
    """Processes (env workers, rollout workers, actor ranks)."""


@dataclass(frozen=True)
class Plan:
    """A complete placement, ready for a backend's builder."""

    backend: str
    mode: str
    cluster: Cluster
    env: ComponentPlan
    rollout: ComponentPlan
    actor: ComponentPlan
    num_envs: int
    pipeline_stages: int
    engine: str
    offload: tuple[str, ...]
    """What moves off the devices between phases (empty on CPU slots: host memory is the device)."""
    weight_sync: str
    """How the rollout gets the actor's weights each iteration."""
    notes: tuple[str, ...] = ()
    """Facts worth printing (e.g. a single-process engine that uses one of several actor devices)."""

    @property
    def pipelined(self) -> bool:
        return self.pipeline_stages > 1

    @property
    def envs_per_stage(self) -> int:
        return self.num_envs // self.pipeline_stages

    def stage_env_ids(self) -> list[list[int]]:
        """Env indices of each pipeline stage (contiguous blocks, stage order = env order)."""
        m = self.envs_per_stage
        return [list(range(s * m, (s + 1) * m)) for s in range(self.pipeline_stages)]

    def to_dict(self) -> dict:
        out = asdict(self)
        out["stages"] = self.stage_env_ids()
        return out

    def describe(self) -> str:
        """A short human-readable table of the plan."""
        c = self.cluster

        def devs(d: tuple[int, ...]) -> str:
            return ",".join(c.name(i) for i in d)

        rows = [
            ("cluster", f"{c.count} {'GPUs' if c.kind == 'gpu' else 'CPU slots'} ({c.source})"),
            ("backend / mode", f"{self.backend} / {self.mode}"),
            ("env", f"{devs(self.env.devices)}: {self.num_envs} envs in {self.env.workers} worker processes"),
            ("rollout", f"{devs(self.rollout.devices)}: {self.rollout.workers} worker(s)"),
            ("actor", f"{devs(self.actor.devices)}: engine {self.engine}, {self.actor.workers} process(es)"),
            ("pipeline", f"{self.pipeline_stages} stage(s) of {self.envs_per_stage} envs"
             + (": stage i simulates while stage i-1 is inferred" if self.pipelined else " (sequential phases)")),
            ("offload", ", ".join(self.offload) or "none"),
            ("weight sync", self.weight_sync),
        ]
        rows += [("note", n) for n in self.notes]
        width = max(len(k) for k, _ in rows)
        return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


def _resolve(devices: tuple[int, ...] | None, cluster: Cluster, key: str, text: str) -> tuple[int, ...]:
    if devices is None:
        return tuple(range(cluster.count))
    past = [d for d in devices if d >= cluster.count]
    if past:
        noun = "GPUs" if cluster.kind == "gpu" else "CPU slots"
        raise ConfigError(f"{key}={text!r} names device {past[0]} but the cluster has {cluster.count} {noun} "
                          f"(0-{cluster.count - 1}, {cluster.source}); use indices below {cluster.count}", key=key)
    return devices


def derive_mode(env: tuple[int, ...], rollout: tuple[int, ...], actor: tuple[int, ...]) -> str:
    """The mode the three device sets describe (see the module docstring); ConfigError otherwise."""
    e, r, a = set(env), set(rollout), set(actor)
    if e == r == a:
        return "collocated"
    if e & r:
        raise ConfigError(
            f"placement.env and placement.rollout share devices {sorted(e & r)} without being the same set: "
            "give env, rollout and actor the same devices (collocated) or give env and rollout disjoint devices "
            "(hybrid / disaggregated)", key="placement.rollout")
    if r <= a:
        return "hybrid"
    if not (a & (e | r)):
        return "disaggregated"
    raise ConfigError(
        f"placement.actor={sorted(a)} overlaps env/rollout devices {sorted(a & (e | r))} but does not contain the "
        f"rollout's {sorted(r)}: set actor to include the rollout devices (hybrid, e.g. actor=all) or to devices of "
        "its own (disaggregated)", key="placement.actor")


def _one_env_per_worker(backend: str) -> bool:
    """Whether the backend holds each env in a process of its own (LIBERO: robosuite renders into whichever
    GL context is current, so two envs cannot share a process)."""
    from simulators.registry import ENV_BACKENDS, load_builtin_backends

    load_builtin_backends()
    return backend in ENV_BACKENDS and ENV_BACKENDS.get(backend).one_env_per_worker


def _env_workers(config, cluster: Cluster, env_devices: tuple[int, ...], k: int) -> int:
    """Env worker processes: env.num_workers, or per_device x devices; with k stages each stage gets its own."""
    n, explicit = config.env.num_envs, config.env.num_workers
    if _one_env_per_worker(config.env.backend):
        return n
    if explicit is not None:
        if k > 1 and (explicit % k or n % explicit):
            fits = [w for w in range(k, n + 1, k) if n % w == 0]
            raise ConfigError(
                f"env.num_workers={explicit} must be a multiple of placement.pipeline_stages={k} and divide "
                f"env.num_envs={n}, so each stage's envs live in their own workers; use one of {fits} or leave "
                "env.num_workers null", key="env.num_workers")
        return explicit
    wanted = min(n, len(env_devices) * config.placement.env_workers_per_device)
    if k == 1:
        return wanted
    per_stage = max(1, math.ceil(wanted / k))
    while (n // k) % per_stage:
        per_stage -= 1
    return k * per_stage


def make_plan(config, cluster: Cluster | None = None) -> Plan:
    """The plan for `config` on `cluster` (detected from this machine when None)."""
    p = config.placement
    cluster = cluster or detect_cluster(p)
    sets = p.device_sets
    env = _resolve(sets["env"], cluster, "placement.env", p.env)
    rollout = _resolve(sets["rollout"], cluster, "placement.rollout", p.rollout)
    actor = _resolve(sets["actor"], cluster, "placement.actor", p.actor)
    mode = derive_mode(env, rollout, actor)
    if p.mode != "auto" and p.mode != mode:
        raise ConfigError(f"placement.mode={p.mode} but env={p.env!r}, rollout={p.rollout!r}, actor={p.actor!r} "
                          f"describe {mode}; set placement.mode=auto or change the device sets", key="placement.mode")
    k, n = p.pipeline_stages, config.env.num_envs
    if k > 1 and mode == "collocated":
        raise ConfigError(
            f"placement.pipeline_stages={k} overlaps simulation with inference, which needs env and rollout on "
            f"different devices; set placement.env and placement.rollout to disjoint sets (e.g. env=0 rollout=1 "
            "actor=all for hybrid) or pipeline_stages=1", key="placement.pipeline_stages")
    if n % k:
        divisors = [d for d in range(1, n + 1) if n % d == 0]
        raise ConfigError(f"placement.pipeline_stages={k} does not divide env.num_envs={n}; use one of {divisors} "
                          f"or set env.num_envs to a multiple of {k}", key="placement.pipeline_stages")
    notes: list[str] = []
    in_main = p.backend == "local" and mode != "disaggregated"
    rollout_workers = 1 if in_main or cluster.kind == "cpu" else len(rollout)
    if in_main and cluster.kind == "gpu" and len(rollout) > 1:
        if mode == "hybrid":
            raise ConfigError(f"the local backend runs a hybrid rollout in the main process, on one GPU, but "
                              f"placement.rollout={p.rollout!r} names {len(rollout)}; give it one GPU, use "
                              "disaggregated, or placement.backend=ray", key="placement.rollout")
        notes.append(f"the local collocated policy acts on {cluster.name(rollout[0])}")
    actor_workers = len(actor) if p.engine in DISTRIBUTED_ENGINES else 1
    if p.engine == "single" and cluster.kind == "gpu" and len(actor) > 1:
        notes.append(f"engine single trains on {cluster.name(actor[0])} only; placement.engine=fsdp2 (or deepspeed) "
                     f"under torchrun trains one data-parallel rank per actor GPU")
    if p.engine in DISTRIBUTED_ENGINES:
        notes.append(f"engine {p.engine} runs under torchrun, one data-parallel rank per device: rank r gets "
                     "env.num_envs / ranks envs and device r for env, rollout and actor (collocated), and acts with a "
                     "local copy of the policy refreshed after every update")
    offload: tuple[str, ...] = ()
    if cluster.kind == "gpu" and p.offload and mode != "disaggregated":
        offload = ("actor optimizer state -> host memory during rollout",)
    if in_main:
        weight_sync = "shared weights: the rollout is the actor's policy (version bump)"
    else:
        weight_sync = "send: all tensors on the first sync, then trainable ones only (LoRA + value head with LoRA)"
    if p.backend == "local" and cluster.kind == "cpu" and p.pin_cpus and mode != "collocated":
        notes.append("processes are pinned to their CPU slots (placement.pin_cpus)")
    return Plan(
        backend=p.backend, mode=mode, cluster=cluster,
        env=ComponentPlan(env, _env_workers(config, cluster, env, k)),
        rollout=ComponentPlan(rollout, rollout_workers),
        actor=ComponentPlan(actor, actor_workers),
        num_envs=n, pipeline_stages=k, engine=p.engine, offload=offload, weight_sync=weight_sync, notes=tuple(notes),
    )


__all__ = ["MODES", "ComponentPlan", "Plan", "derive_mode", "make_plan"]
