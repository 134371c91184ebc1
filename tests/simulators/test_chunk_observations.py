"""The worker's chunk loop asks only for the observations it hands back: the chunk's last step is a
`step`, every step before it a `step_unobserved`, and an episode that ends on an unobserved step gets
its observation from `observe()`. Run on a small counting `SingleEnv` (no simulator needed)."""

import numpy as np

from simulators.single_env import SingleEnv, SingleEnvInfo, StepOutcome
from simulators.worker import _run_chunk


class CountingEnv(SingleEnv):
    """A 1-d env whose state is the number of steps taken; success when it reaches `success_at`."""

    def __init__(self, success_at: int = 99) -> None:
        self.t, self.success_at, self.calls = 0, success_at, []

    def info(self) -> SingleEnvInfo:
        return SingleEnvInfo(action_dim=1, control_hz=10.0, max_episode_steps=100, proprio_dim=1)

    def reset(self, reset_id: int):
        self.t = 0
        return self._obs()

    def step(self, action):
        self.calls.append("step")
        return self._advance(observed=True)

    def step_unobserved(self, action):
        self.calls.append("unobserved")
        return self._advance(observed=False)

    def observe(self):
        self.calls.append("observe")
        return self._obs()

    def _advance(self, observed: bool) -> StepOutcome:
        self.t += 1
        done = self.t >= self.success_at
        return StepOutcome(obs=self._obs() if observed else None, reward=float(done), terminated=done, success=done)

    def _obs(self):
        return {"images": {}, "proprio": np.array([self.t], np.float32), "instruction": ""}


def test_only_the_last_step_of_a_chunk_is_observed():
    env = CountingEnv()
    out = _run_chunk(env, np.zeros((4, 1)), steps_left=10)
    assert env.calls == ["unobserved"] * 3 + ["step"] and out["obs"]["proprio"][0] == 4
    env.calls.clear()
    out = _run_chunk(env, np.zeros((4, 1)), steps_left=2)  # the step limit cuts the chunk: its step 2 is the last
    assert env.calls == ["unobserved", "step"] and out["obs"]["proprio"][0] == 6 and len(out["rewards"]) == 2


def test_an_episode_ending_on_an_unobserved_step_is_observed_there():
    env = CountingEnv(success_at=2)
    out = _run_chunk(env, np.zeros((4, 1)), steps_left=10)
    assert env.calls == ["unobserved", "unobserved", "observe"]
    assert out["terminated"] and out["rewards"] == [0.0, 1.0] and out["obs"]["proprio"][0] == 2


def test_a_backend_without_lazy_observations_steps_as_before():
    class Eager(CountingEnv):
        step_unobserved = SingleEnv.step_unobserved  # the base class: a plain `step`
        observe = SingleEnv.observe

    env = Eager()
    out = _run_chunk(env, np.zeros((3, 1)), steps_left=10)
    assert env.calls == ["step"] * 3 and out["obs"]["proprio"][0] == 3
