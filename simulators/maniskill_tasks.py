"""The ManiSkill3 tasks this platform supports: language instruction, wrist-camera robot, goal display.

Every task here builds offline (no asset download) with RGB cameras on CPU physics with
ManiSkill 3.0.1 / SAPIEN 3.0.3. `DEFAULT_SUITE` holds those with the 7-d `pd_ee_delta_pose`
action of the Panda arm (xyz delta, rotation delta, gripper); PushT-v1 uses a 6-d stick robot
and is only in the "all" suite. Adding a task is one entry in `MANISKILL_TASKS`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ManiSkillTask:
    """What the platform adds to a ManiSkill env id."""

    instruction: str
    """The language instruction every episode of the task gets."""
    wrist_robot: str | None = "panda_wristcam"
    """`robot_uids` to load when a wrist camera is requested (same arm plus a hand camera); None: no wrist camera."""
    show_goal: bool = False
    """Make the goal marker that ManiSkill hides from cameras visible, so an image policy can see the goal."""
    dense_reward: bool = True
    """The task has a normalised dense reward (otherwise only reward_mode="sparse" works)."""
    spawn_group: tuple[str, ...] = ()
    """Env attributes of the actors ManiSkill places at random around the table's origin, the first one
    drawn uniformly and the others at fixed offsets from it (PushCube: the cube, then its goal 0.2 m in
    +x). `env.spawn_scale` shrinks the first one's xy offset from the origin and moves the others with
    it; empty: the task does not support `spawn_scale`."""


MANISKILL_TASKS: dict[str, ManiSkillTask] = {
    "PickCube-v1": ManiSkillTask("pick up the red cube and move it to the green goal", show_goal=True),
    "PushCube-v1": ManiSkillTask("push the blue cube onto the red and white target", spawn_group=("obj", "goal_region")),
    "PullCube-v1": ManiSkillTask("pull the blue cube back onto the red and white target", spawn_group=("obj", "goal_region")),
    "StackCube-v1": ManiSkillTask("stack the red cube on top of the green cube"),
    "PegInsertionSide-v1": ManiSkillTask("insert the peg into the hole in the side of the box"),
    "PlugCharger-v1": ManiSkillTask("plug the charger into the wall receptacle", dense_reward=False),
    "PlaceSphere-v1": ManiSkillTask("place the blue sphere into the bin"),
    "PokeCube-v1": ManiSkillTask("use the peg to push the red cube onto the red and white target"),
    "LiftPegUpright-v1": ManiSkillTask("lift the peg and stand it upright on the table"),
    "StackPyramid-v1": ManiSkillTask(
        "put the red cube next to the green cube and stack the blue cube on top of both", dense_reward=False
    ),
    "RollBall-v1": ManiSkillTask("push the blue ball so that it rolls onto the red and white target"),
    "PullCubeTool-v1": ManiSkillTask("use the tool to pull the red cube into reach"),
    "PushT-v1": ManiSkillTask("push the T-shaped block onto the T-shaped goal outline", wrist_robot=None),
}

DEFAULT_SUITE: tuple[str, ...] = tuple(t for t in MANISKILL_TASKS if t != "PushT-v1")
"""Tasks that build offline with RGB and take the 7-d Panda end-effector action."""

TASK_SUITES: dict[str, tuple[str, ...]] = {"default": DEFAULT_SUITE, "all": tuple(MANISKILL_TASKS)}
