"""LIBERO suites and their evaluation protocol (pure data, no simulator import).

Suites: libero_spatial, libero_object, libero_goal, libero_10 (10 tasks each), libero_90 (90), and
libero_130 (all five, in that order). Each task has 50 fixed init states. Per-suite step limits are
the reference evaluation's: 220/280/300/520/400 for spatial/object/goal/10/90; a libero_130 task
keeps the limit of the suite it comes from.

A `task` string names a suite ("libero_spatial": every task of it) or one task of a suite, by index
or by name ("libero_spatial/3", "libero_goal/open_the_middle_drawer_of_the_cabinet").

Reset ids over T selected tasks: id r runs task r mod T from init state (r div T) mod 50, so
ids 0 .. 50*T-1 cover every (task, init state) once (the evaluation protocol) and consecutive ids
cycle through the tasks (mixing for training).
"""

from __future__ import annotations

BASE_SUITES: dict[str, int] = {
    "libero_spatial": 220,
    "libero_object": 280,
    "libero_goal": 300,
    "libero_10": 520,
    "libero_90": 400,
}
"""Benchmark suite -> max episode steps of the reference evaluation."""

TASK_COUNTS: dict[str, int] = {"libero_spatial": 10, "libero_object": 10, "libero_goal": 10, "libero_10": 10, "libero_90": 90}
"""Tasks per benchmark suite."""

COMPOSITE_SUITES: dict[str, tuple[str, ...]] = {"libero_130": tuple(BASE_SUITES)}
"""Suites made of whole base suites, in order."""

SUITES: tuple[str, ...] = (*BASE_SUITES, *COMPOSITE_SUITES)

DEFAULT_SETTLE_STEPS = 10
"""No-op steps after each reset so objects come to rest (the reference evaluation waits 10)."""

NOOP_ACTION = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, -1.0)
"""Zero end-effector motion with the gripper open (-1 opens in LIBERO)."""

CONTROL_HZ = 20.0

ACTION_DIM = 7
"""OSC_POSE delta (xyz, axis-angle) plus gripper."""
PROPRIO_DIM = 8
"""eef position (3) + axis-angle (3) + gripper finger positions (2)."""
GRIPPER_CONVENTION = "close_positive"
"""LIBERO's gripper action: -1 opens, +1 closes."""
CAMERAS = ("main", "wrist")
"""Cameras a LIBERO env renders: agentview and the eye-in-hand camera."""


def parse_task(task: str) -> tuple[str, str | None]:
    """Split "suite[/task]" into (suite, selector or None); raise ValueError naming the fix."""
    suite, _, selector = task.partition("/")
    if suite not in SUITES:
        raise ValueError(f"unknown LIBERO suite {suite!r} in task {task!r}; use one of {list(SUITES)}")
    return suite, (selector or None)


def base_suites_of(suite: str) -> tuple[str, ...]:
    """The benchmark suites a (possibly composite) suite is made of."""
    return COMPOSITE_SUITES.get(suite, (suite,))


def num_tasks_of(suite: str) -> int:
    return sum(TASK_COUNTS[s] for s in base_suites_of(suite))


def max_steps_of(suite: str) -> int:
    """The longest step limit among the base suites of `suite` (a bound for buffers)."""
    return max(BASE_SUITES[s] for s in base_suites_of(suite))


def split_reset_id(reset_id: int, num_tasks: int, num_states: int) -> tuple[int, int]:
    """(task index, init-state index) of a reset id; see the module docstring."""
    return reset_id % num_tasks, (reset_id // num_tasks) % num_states
