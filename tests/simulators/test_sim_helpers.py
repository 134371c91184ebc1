"""Pure helpers of the simulator package: rotations, LIBERO reset-id mapping, frame annotation."""

import numpy as np
import pytest

from simulators.libero_suites import max_steps_of, num_tasks_of, parse_task, split_reset_id
from simulators.rotations import quat_wxyz_to_xyzw, quat_xyzw_to_axis_angle
from simulators.video import annotate, upscale


def _naive_axis_angle(axis, angle):
    """Quaternion (x, y, z, w) of a rotation by `angle` about unit `axis`."""
    axis = np.asarray(axis, float) / np.linalg.norm(axis)
    return np.concatenate([axis * np.sin(angle / 2), [np.cos(angle / 2)]])


@pytest.mark.parametrize("axis, angle", [((1, 0, 0), 0.3), ((0, 1, 1), 2.0), ((1, -2, 0.5), 3.0), ((0, 0, 1), 1e-3)])
def test_axis_angle_inverts_the_quaternion(axis, angle):
    rotvec = quat_xyzw_to_axis_angle(_naive_axis_angle(axis, angle))
    expected = np.asarray(axis, float) / np.linalg.norm(axis) * angle
    np.testing.assert_allclose(rotvec, expected, atol=1e-5)


def test_axis_angle_keeps_robosuites_unnormalised_sign_convention():
    q = _naive_axis_angle((1, 0, 0), 0.5)
    # -q is the same rotation; robosuite maps it to angle 2*pi - 0.5 about -x
    np.testing.assert_allclose(quat_xyzw_to_axis_angle(-q), [-(2 * np.pi - 0.5), 0, 0], atol=1e-5)
    np.testing.assert_array_equal(quat_xyzw_to_axis_angle([0, 0, 0, 1]), np.zeros(3))
    np.testing.assert_array_equal(quat_wxyz_to_xyzw(np.array([4, 1, 2, 3])), [1, 2, 3, 4])


def test_libero_reset_ids_cover_every_task_and_init_state_once():
    tasks, states = 10, 50
    pairs = {split_reset_id(r, tasks, states) for r in range(tasks * states)}
    assert len(pairs) == tasks * states
    assert [split_reset_id(r, tasks, states)[0] for r in range(12)] == [*range(10), 0, 1]
    assert split_reset_id(tasks * states + 3, tasks, states) == split_reset_id(3, tasks, states)


def test_libero_suite_table():
    assert [max_steps_of(s) for s in ("libero_spatial", "libero_object", "libero_goal", "libero_10", "libero_90")] == [
        220,
        280,
        300,
        520,
        400,
    ]
    assert num_tasks_of("libero_130") == 130 and max_steps_of("libero_130") == 520
    assert parse_task("libero_goal/3") == ("libero_goal", "3") and parse_task("libero_10") == ("libero_10", None)
    with pytest.raises(ValueError, match="unknown LIBERO suite"):
        parse_task("libero_100")


def test_upscale_and_annotate():
    frame = np.full((64, 64, 3), 100, np.uint8)
    big = upscale(frame, 256)
    assert big.shape == (256, 256, 3) and upscale(frame, 32).shape == (64, 64, 3)
    out = annotate(big, "pick up the red cube", "t=3 SUCCESS")
    assert out.shape == big.shape and np.array_equal(out[120:140], big[120:140])
    assert not np.array_equal(out[:14], big[:14]) and not np.array_equal(out[-14:], big[-14:])
