"""Cheaper visual meshes for SAPIEN scenes: the main cost of RGB observations on a CPU.

With Mesa's software Vulkan (lavapipe) a frame costs time in proportion to the triangles drawn,
not to the image size: a ManiSkill PushCube frame at 64 px or 128 px takes ~50 ms, nearly all of
it in the Panda's ~134k-triangle visual meshes and a 20k-triangle floor grid. `simplify_scene`
swaps each large visual mesh for a lighter copy; collision shapes and physics are untouched.

- Planar meshes whose texture coordinates are an affine function of the plane (the floor grid)
  become one two-triangle rectangle with the same mapping: the image does not change.
- Other meshes above `MIN_TRIANGLES` are welded (vertices at the same position merged, so the
  decimation sees one surface rather than loose triangles), decimated by quadric edge collapse
  (`fast-simplification`) to `keep_fraction` of their triangles, and given fresh smooth normals.
  Their texture coordinates are dropped: the Panda's materials are flat colours.

Measured on a 2-core CPU (`tools/bench_sim.py --mesh-detail 1.0 0.1`): PushCube RGB steps ~3x faster at
`keep_fraction=0.1`, images differing by well under one grey level on average.
Entities made here carry a mark, so a second call on the same scene does nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MIN_TRIANGLES = 2000
"""Visual meshes with fewer triangles than this (per body) are kept as they are."""
MIN_PART_TRIANGLES = 200
"""Mesh parts below this are copied as they are inside a simplified body."""
SIMPLIFIED_MARK = "[low-poly]"
"""Suffix of the name of every render body made here."""


@dataclass(frozen=True)
class SimplifyReport:
    bodies: int
    triangles_before: int
    triangles_after: int


def triangle_count(body) -> int:
    """Triangles drawn for one `RenderBodyComponent` (all shapes, all parts)."""
    return sum(len(part.get_triangles()) for shape in body.render_shapes for part in shape.parts)


def weld(vertices: np.ndarray, triangles: np.ndarray, decimals: int = 6) -> tuple[np.ndarray, np.ndarray]:
    """Merge vertices at the same position (rounded to `decimals` metres); triangles re-indexed."""
    unique, inverse = np.unique(np.round(vertices, decimals), axis=0, return_inverse=True)
    return unique.astype(np.float32), inverse.reshape(-1)[triangles].astype(np.uint32)


def smooth_normals(vertices: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """Area-weighted vertex normals."""
    a, b, c = (vertices[triangles[:, k]] for k in range(3))
    face = np.cross(b - a, c - a)
    normals = np.zeros_like(vertices, dtype=np.float64)
    for k in range(3):
        np.add.at(normals, triangles[:, k], face)
    normals /= np.linalg.norm(normals, axis=1, keepdims=True) + 1e-12
    return normals.astype(np.float32)


def flat_rectangle(vertices, triangles, normals, uvs):
    """A planar (constant z) mesh with affine texture coordinates as two triangles, else None."""
    if np.ptp(vertices[:, 2]) > 1e-6:
        return None
    plane = np.c_[vertices[:, :2], np.ones(len(vertices))]
    uv_map, *_ = np.linalg.lstsq(plane, uvs, rcond=None)
    if np.abs(plane @ uv_map - uvs).max() > 1e-4:
        return None
    lo, hi = vertices[:, :2].min(0), vertices[:, :2].max(0)
    corners = np.array([[lo[0], lo[1]], [hi[0], lo[1]], [hi[0], hi[1]], [lo[0], hi[1]]])
    new_vertices = np.c_[corners, np.full(4, vertices[0, 2])].astype(np.float32)
    new_uvs = (np.c_[corners, np.ones(4)] @ uv_map).astype(np.float32)
    a, b, c = vertices[triangles[0]]
    faces_up = np.cross(b - a, c - a)[2] >= 0
    new_triangles = np.array([[0, 1, 2], [0, 2, 3]] if faces_up else [[0, 2, 1], [0, 3, 2]], dtype=np.uint32)
    return new_vertices, new_triangles, np.tile(normals[0], (4, 1)).astype(np.float32), new_uvs


def simplified_part(part, keep_fraction: float):
    """(vertices, triangles, normals, uvs) of a lighter copy of one mesh part."""
    import fast_simplification

    vertices, triangles = part.get_vertices(), part.get_triangles()
    normals, uvs = part.get_vertex_normal(), part.get_vertex_uv()
    if len(triangles) < MIN_PART_TRIANGLES:
        return vertices, triangles, normals, uvs
    rectangle = flat_rectangle(vertices, triangles, normals, uvs)
    if rectangle is not None:
        return rectangle
    vertices, triangles = weld(vertices, triangles)
    vertices, triangles = fast_simplification.simplify(vertices, triangles, target_reduction=1.0 - keep_fraction)
    vertices = np.ascontiguousarray(vertices, dtype=np.float32)
    triangles = np.ascontiguousarray(triangles, dtype=np.uint32)
    return vertices, triangles, smooth_normals(vertices, triangles), np.zeros((len(vertices), 2), np.float32)


def _simplified_body(body, keep_fraction: float):
    import sapien.render as render

    new = render.RenderBodyComponent()
    new.name = f"{body.name}{SIMPLIFIED_MARK}"
    for shape in body.render_shapes:
        if not isinstance(shape, render.RenderShapeTriangleMesh):
            new.attach(shape.clone())
            continue
        for part in shape.parts:
            vertices, triangles, normals, uvs = simplified_part(part, keep_fraction)
            mesh = render.RenderShapeTriangleMesh(vertices, triangles, normals, uvs, part.material)
            mesh.local_pose = shape.local_pose
            mesh.set_scale(shape.scale)
            mesh.front_face = shape.front_face
            mesh.name = shape.name
            new.attach(mesh)
    new.visibility = body.visibility
    return new


def simplify_scene(scene, keep_fraction: float) -> SimplifyReport:
    """Replace the large visual meshes of a `sapien.Scene` by lighter copies (see the module doc)."""
    import sapien.render as render

    if not 0.0 < keep_fraction <= 1.0:
        raise ValueError(f"keep_fraction={keep_fraction} must be in (0, 1]")
    if keep_fraction == 1.0:
        return SimplifyReport(0, 0, 0)
    bodies = before = after = 0
    for entity in scene.entities:
        body = entity.find_component_by_type(render.RenderBodyComponent)
        if body is None or body.name.endswith(SIMPLIFIED_MARK):
            continue
        count = triangle_count(body)
        if count < MIN_TRIANGLES:
            continue
        new = _simplified_body(body, keep_fraction)
        entity.remove_component(body)
        entity.add_component(new)
        bodies, before, after = bodies + 1, before + count, after + triangle_count(new)
    return SimplifyReport(bodies, before, after)
