"""The official protocol of `vla-rl eval CHECKPOINT --benchmark SUITE`: which episodes, under which settings.

LIBERO (`simulators/libero_suites.py`, checked against the published evaluations in
docs/simulators.md): each of a suite's T tasks runs once from each of its 50 fixed init states
(reset id r = state * T + task), after 10 settle steps, within its suite's step limit. What the
policy sees is part of the protocol too: the image protocol and size and the cameras, and the
decoding (greedy, as the reference). `signature()` is everything two evaluations must share to be
compared or to resume one another.

A reduced protocol (some tasks, the first k init states) or a modified one (other settle steps or
step limits) runs the same machinery for tests and smoke runs; it is recorded as partial, with the
reasons, and its mean is never reported as the benchmark figure.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Sequence

from simulators.libero_suites import BASE_SUITES, DEFAULT_SETTLE_STEPS, SUITES, num_tasks_of
from vla_rl.config.core import ConfigError

STATES_PER_TASK = 50
"""Fixed init states per LIBERO task; the protocol runs one episode from each."""


@dataclass(frozen=True)
class BenchmarkProtocol:
    """One benchmark evaluation's episodes and the settings that make its figure comparable."""

    suite: str
    task_names: tuple[str, ...]
    """Every task of the suite in benchmark order ("libero_spatial/pick_up_the_black_bowl_...")."""
    tasks: tuple[int, ...]
    """The task indices evaluated (all of them unless reduced)."""
    init_states: int
    """Episodes per task: init states 0 .. init_states-1 (50 in the benchmark)."""
    settle_steps: int
    step_limits: tuple[int, ...]
    """Step limit of each evaluated task (its suite's, unless env.max_episode_steps overrides it)."""
    image_protocol: str
    image_size: int
    cameras: tuple[str, ...]
    decoding: str
    """"greedy" (the reference's `do_sample=False`) or "sample"."""
    temperature: float | None
    """Sampling temperature (None when greedy)."""
    render: str = "published"
    """The renderer's cost settings: "published", or e.g. "mesh_detail=0.25, multisample=off"."""

    @property
    def num_tasks(self) -> int:
        return len(self.task_names)

    def deviations(self) -> list[str]:
        """Why this is not the benchmark's own protocol (empty: it is)."""
        out = []
        if len(self.tasks) < self.num_tasks:
            out.append(f"{len(self.tasks)} of {self.num_tasks} tasks")
        if self.init_states < STATES_PER_TASK:
            out.append(f"{self.init_states} of {STATES_PER_TASK} init states per task")
        if self.settle_steps != DEFAULT_SETTLE_STEPS:
            out.append(f"{self.settle_steps} settle steps instead of {DEFAULT_SETTLE_STEPS}")
        if self.step_limits != tuple(suite_step_limit(self.task_names[t]) for t in self.tasks):
            out.append(f"step limits {sorted(set(self.step_limits))} instead of the suite's")
        if self.render != "published":
            out.append(f"render settings {self.render} instead of the published ones")
        return out

    @property
    def partial(self) -> bool:
        return bool(self.deviations())

    def task_of(self, reset_id: int) -> int:
        return reset_id % self.num_tasks

    def state_of(self, reset_id: int) -> int:
        return reset_id // self.num_tasks

    def reset_id(self, task: int, state: int) -> int:
        return state * self.num_tasks + task

    def reset_ids(self) -> list[int]:
        """Every episode's reset id, task-major (task 0's init states first)."""
        return [self.reset_id(t, s) for t in self.tasks for s in range(self.init_states)]

    def signature(self) -> dict[str, Any]:
        """What must be equal for two evaluations to be paired, or for one to resume the other."""
        out = asdict(self)
        out.update(task_names=list(self.task_names), tasks=list(self.tasks), step_limits=list(self.step_limits),
                   cameras=list(self.cameras), partial=self.partial)
        return out

    def describe(self) -> str:
        """One sentence for reports and manifests."""
        episodes = len(self.tasks) * self.init_states
        limits = "/".join(str(n) for n in sorted(set(self.step_limits)))
        what = (f"the LIBERO benchmark protocol of {self.suite}: {self.num_tasks} tasks x {STATES_PER_TASK} init states "
                f"({episodes} episodes)" if not self.partial else
                f"a PARTIAL LIBERO protocol of {self.suite} ({'; '.join(self.deviations())}; {episodes} episodes), "
                "not the benchmark figure")
        temp = f" at temperature {self.temperature}" if self.temperature is not None else ""
        return (f"{what}, {self.settle_steps} settle steps, step limits {limits}, {self.decoding} decoding{temp}, "
                f"cameras {'+'.join(self.cameras)} at {self.image_size} px through the {self.image_protocol} image protocol")


def suite_step_limit(task_name: str) -> int:
    """The step limit of a task named "base_suite/..." (its base suite's)."""
    return BASE_SUITES[task_name.partition("/")[0]]


def check_suite(suite: str) -> str:
    """`suite` if it is a LIBERO suite; otherwise a ConfigError listing the suites."""
    if suite not in SUITES:
        raise ConfigError(f"--benchmark {suite!r} is not a benchmark suite; use one of {', '.join(SUITES)}")
    return suite


def suite_task_names(suite: str) -> tuple[str, ...]:
    """Benchmark task names of a suite, "base_suite/name", from the installed LIBERO."""
    from simulators.libero_env import list_tasks

    names = tuple(f"{t.suite}/{t.name}" for t in list_tasks(suite))
    if len(names) != num_tasks_of(suite):
        raise RuntimeError(f"the installed LIBERO lists {len(names)} tasks for {suite}, expected {num_tasks_of(suite)}")
    return names


def parse_task_selection(text: str | None, num_tasks: int) -> tuple[int, ...]:
    """"0,3,5-7" -> task indices (None: all of them); a ConfigError names the valid range."""
    if text is None:
        return tuple(range(num_tasks))
    out: list[int] = []
    for part in str(text).split(","):
        lo, sep, hi = part.strip().partition("-")
        try:
            first, last = int(lo), int(hi) if sep else int(lo)
        except ValueError:
            raise ConfigError(f"--tasks {text!r}: {part!r} is not a task index or range such as 0,3,5-7") from None
        if not 0 <= first <= last < num_tasks:
            raise ConfigError(f"--tasks {text!r}: task indices must lie in 0..{num_tasks - 1}")
        out.extend(range(first, last + 1))
    if len(set(out)) != len(out):
        raise ConfigError(f"--tasks {text!r} names a task twice")
    return tuple(sorted(out))


def make_protocol(suite: str, env_cfg: Any, decoding: str, temperature: float, tasks: Sequence[int] | None = None,
                  init_states: int | None = None, task_names: Sequence[str] | None = None) -> BenchmarkProtocol:
    """The protocol of `suite` evaluated on `env_cfg` (its image settings, cameras, settle steps, limits)."""
    names = tuple(task_names) if task_names is not None else suite_task_names(check_suite(suite))
    selected = tuple(range(len(names))) if tasks is None else tuple(tasks)
    k = STATES_PER_TASK if init_states is None else int(init_states)
    if not 1 <= k <= STATES_PER_TASK:
        raise ConfigError(f"--init-states {k}: use 1..{STATES_PER_TASK} (the benchmark runs all {STATES_PER_TASK})")
    limits = tuple(env_cfg.max_episode_steps or suite_step_limit(names[t]) for t in selected)
    return BenchmarkProtocol(suite=suite, task_names=names, tasks=selected, init_states=k,
                             settle_steps=env_cfg.settle_steps, step_limits=limits,
                             image_protocol=env_cfg.image_protocol, image_size=env_cfg.image_size,
                             cameras=tuple(env_cfg.cameras), decoding=decoding,
                             temperature=temperature if decoding == "sample" else None, render=render_settings(env_cfg))


def render_settings(env_cfg: Any) -> str:
    """"published", or the renderer settings that make images differ from the published scene's."""
    if env_cfg.published_render:
        return "published"
    return f"mesh_detail={env_cfg.mesh_detail:g}, multisample={'on' if env_cfg.multisample else 'off'}"


__all__ = ["BenchmarkProtocol", "STATES_PER_TASK", "check_suite", "make_protocol", "parse_task_selection",
           "suite_step_limit", "suite_task_names"]
