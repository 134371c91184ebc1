"""Lighter visual meshes (`env.mesh_detail`): fewer triangles, same physics, nearly the same image.

The real-simulator tests build two ManiSkill PushCube envs in this process (full and low detail).
"""

import numpy as np
import pytest

from simulators.low_poly import flat_rectangle, simplify_scene, smooth_normals, triangle_count, weld
from vla_rl.config.core import ConfigError
from vla_rl.config.env import EnvConfig


def _grid(n: int, uv_of):
    xs, ys = np.meshgrid(np.linspace(-2, 3, n + 1), np.linspace(-1, 4, n + 1), indexing="ij")
    vertices = np.c_[xs.ravel(), ys.ravel(), np.full(xs.size, 0.5)].astype(np.float32)
    idx = np.arange((n + 1) ** 2).reshape(n + 1, n + 1)
    a, b, c, d = idx[:-1, :-1].ravel(), idx[1:, :-1].ravel(), idx[1:, 1:].ravel(), idx[:-1, 1:].ravel()
    triangles = np.r_[np.c_[a, b, c], np.c_[a, c, d]].astype(np.uint32)
    normals = np.tile([0, 0, 1], (len(vertices), 1)).astype(np.float32)
    return vertices, triangles, normals, uv_of(vertices[:, :2]).astype(np.float32)


def test_a_planar_grid_with_affine_uvs_becomes_a_rectangle_with_the_same_mapping():
    v, t, n, uv = _grid(10, lambda xy: xy @ np.array([[2.0, 0.5], [0.0, -1.0]]) + [0.3, 0.1])
    rect = flat_rectangle(v, t, n, uv)
    assert rect is not None
    rv, rt, rn, ruv = rect
    assert len(rv) == 4 and len(rt) == 2
    np.testing.assert_allclose(rv[:, 2], 0.5)
    np.testing.assert_allclose(sorted(map(tuple, rv[:, :2].round(6))), [(-2, -1), (-2, 4), (3, -1), (3, 4)])
    expected = rv[:, :2] @ np.array([[2.0, 0.5], [0.0, -1.0]]) + [0.3, 0.1]
    np.testing.assert_allclose(ruv, expected, atol=1e-5)
    # winding kept: the rectangle faces the same way (+z) as the grid
    a, b, c = rv[rt[0]]
    assert np.cross(b - a, c - a)[2] > 0


def test_non_affine_uvs_or_a_non_planar_mesh_are_not_flattened():
    v, t, n, uv = _grid(10, lambda xy: np.c_[np.sin(xy[:, 0]), xy[:, 1]])
    assert flat_rectangle(v, t, n, uv) is None
    v, t, n, uv = _grid(10, lambda xy: xy)
    v[5, 2] += 0.01
    assert flat_rectangle(v, t, n, uv) is None


def test_weld_merges_duplicated_vertices_and_normals_point_outward():
    # two triangles of a unit square, each with its own copy of the shared edge
    v = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 0, 0], [1, 1, 0], [0, 1, 0]], np.float32)
    t = np.array([[0, 1, 2], [3, 4, 5]], np.uint32)
    wv, wt = weld(v, t)
    assert len(wv) == 4
    np.testing.assert_array_equal(wv[wt], v[t])
    np.testing.assert_allclose(smooth_normals(wv, wt), np.tile([0, 0, 1], (4, 1)), atol=1e-6)


def test_mesh_detail_is_validated():
    with pytest.raises(ConfigError, match="mesh_detail"):
        EnvConfig(mesh_detail=0.0)
    with pytest.raises(ConfigError, match="mesh_detail"):
        EnvConfig(mesh_detail=1.5)


def test_multisample_is_libero_only_and_libero_validates_mesh_detail():
    from vla_rl.config.core import from_dict

    with pytest.raises(ConfigError, match=r"env.multisample is read only with env.backend in \['libero'\]"):
        from_dict(EnvConfig, {"backend": "maniskill", "multisample": False}, prefix="env")
    with pytest.raises(ConfigError, match="mesh_detail"):
        from_dict(EnvConfig, {"backend": "libero", "task": "libero_spatial/0", "mesh_detail": 0.0}, prefix="env")
    cfg = from_dict(EnvConfig, {"backend": "libero", "task": "libero_spatial/0", "mesh_detail": 0.25}, prefix="env")
    assert cfg.mesh_detail == 0.25 and not cfg.published_render


def _triangles(scene) -> int:
    import sapien.render as render

    bodies = (entity.find_component_by_type(render.RenderBodyComponent) for entity in scene.entities)
    return sum(triangle_count(body) for body in bodies if body is not None)


@pytest.fixture(scope="module")
def full_and_low():
    from simulators.maniskill_env import ManiSkillSingleEnv

    envs = [ManiSkillSingleEnv("PushCube-v1", 96, ("main",), "sparse", 20, mesh_detail=d) for d in (1.0, 0.1)]
    yield envs
    for e in envs:
        e.close()


def test_low_detail_draws_far_fewer_triangles_and_a_second_pass_changes_nothing(full_and_low):
    full, low = full_and_low
    full.reset(0), low.reset(0)
    scene_full, scene_low = full._env.scene.sub_scenes[0], low._env.scene.sub_scenes[0]
    assert _triangles(scene_low) < 0.2 * _triangles(scene_full)
    assert simplify_scene(scene_low, 0.1).bodies == 0
    assert low.info().extras["mesh_detail"] == 0.1


def test_low_detail_keeps_physics_and_nearly_the_image(full_and_low):
    full, low = full_and_low
    obs_full, obs_low = full.reset(3), low.reset(3)
    rng = np.random.default_rng(0)
    for _ in range(5):
        action = rng.uniform(-0.5, 0.5, 7).astype(np.float32)
        obs_full, obs_low = full.step(action).obs, low.step(action).obs
    np.testing.assert_allclose(obs_low["proprio"], obs_full["proprio"], atol=1e-6)
    a, b = obs_full["images"]["main"].astype(int), obs_low["images"]["main"].astype(int)
    diff = np.abs(a - b).max(axis=-1)
    assert diff.any(), "the low-detail image should differ somewhere (the meshes were replaced)"
    assert diff.mean() < 3.0, f"mean difference {diff.mean():.2f} grey levels"
    assert (diff > 40).mean() < 0.02, "more than 2% of the pixels changed a lot: the robot did not render whole"
