"""Cheaper visual meshes for LIBERO's MuJoCo scenes (`env.mesh_detail` < 1 on the libero backend).

MuJoCo on a CPU (EGL or OSMesa through Mesa's llvmpipe) spends a frame's time on triangles, not on
pixels: a libero_spatial scene draws ~307k triangles (95% of them in visual-only meshes: the Panda,
its pedestal, bowls, the cookie box), and keeping 10% of every mesh's faces made its two-camera frame
~4x faster at both 128 and 256 px. `simplify_model` rewrites, in place in the compiled `mjModel`, each
mesh that only visual geoms use (contype = conaffinity = 0) and that has `MIN_TRIANGLES` faces or more:

untextured meshes (the Panda's links, its pedestal: ~55% of a libero_spatial scene's faces) are welded
(corners at one position merged) and decimated by quadric edge collapse (`fast-simplification`) to
`keep_fraction` of their faces, with fresh smooth normals. Textured meshes are decimated only from
`MIN_TEXTURED_TRIANGLES` faces (the over-tessellated scanned objects: bowls, the cookie box), welded on
position and texture coordinate with their UV seams kept as borders; smaller textured ones (a plate) stay,
since decimating them tore thin shapes such as a plate's rim, which a policy must see.

The lighter mesh is written into the first slots of the mesh's own vertex, normal, texcoord and face
blocks and `mesh_facenum` is lowered; the renderer reads only that many faces. Collision meshes, masses
and everything physics reads are untouched. robosuite rebuilds the model on every (hard) reset, so the
backend calls this after each reset and rebuilds the render context; the decimated arrays are cached
per mesh, so only the first reset of a task pays for the decimation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from simulators.low_poly import MIN_TRIANGLES, smooth_normals, weld

MIN_TEXTURED_TRIANGLES = 10000
"""Textured meshes are decimated only from this size: the scanned objects (bowls 42k, a cookie box 18k, a
ramekin 16k faces) are over-tessellated, while a 3.5k-face plate lost its thin rim at 25%."""


@dataclass(frozen=True)
class LightMesh:
    """A decimated mesh: vertices (V, 3), faces (F, 3) into them, per-vertex normals, per-vertex UVs or None."""

    vertices: np.ndarray
    faces: np.ndarray
    normals: np.ndarray
    uvs: np.ndarray | None


@dataclass(frozen=True)
class ModelReport:
    meshes: int
    faces_before: int
    faces_after: int


def visual_only_meshes(model: Any) -> dict[int, bool]:
    """mesh id -> whether one of its geoms is textured, for meshes that no colliding geom uses."""
    import mujoco

    used: dict[int, list[int]] = {}
    for g in range(model.ngeom):
        if model.geom_type[g] == mujoco.mjtGeom.mjGEOM_MESH and model.geom_dataid[g] >= 0:
            used.setdefault(int(model.geom_dataid[g]), []).append(g)
    out = {}
    for mesh, geoms in used.items():
        if any(model.geom_contype[g] or model.geom_conaffinity[g] for g in geoms):
            continue
        mats = [int(model.geom_matid[g]) for g in geoms if model.geom_matid[g] >= 0]
        out[mesh] = any(int(np.max(model.mat_texid[m])) >= 0 for m in mats) and model.mesh_texcoordadr[mesh] >= 0
    return out


def _blocks(model: Any, i: int) -> tuple[np.ndarray, np.ndarray]:
    v0, nv = model.mesh_vertadr[i], model.mesh_vertnum[i]
    f0, nf = model.mesh_faceadr[i], model.mesh_facenum[i]
    return model.mesh_vert[v0:v0 + nv], model.mesh_face[f0:f0 + nf]


def decimate(model: Any, i: int, keep_fraction: float, textured: bool) -> LightMesh:
    """The lighter copy of mesh `i`: untextured, corners welded on position, quadric decimation, smooth
    normals; textured, corners welded on position and texture coordinate, UV seams kept as borders, each
    kept vertex keeping its texture coordinate."""
    import fast_simplification

    if textured:
        return _decimate_textured(model, i, keep_fraction)
    vertices, faces = weld(*_blocks(model, i))
    v, f = fast_simplification.simplify(vertices.astype(np.float64), faces.astype(np.int32),
                                        target_reduction=1.0 - keep_fraction)
    v, f = np.asarray(v, np.float32), np.asarray(f, np.int32)
    return LightMesh(v, f, smooth_normals(v, f), None)


def _decimate_textured(model: Any, i: int, keep_fraction: float) -> LightMesh:
    import fast_simplification

    vertices, faces = _blocks(model, i)
    f0, nf, t0 = model.mesh_faceadr[i], model.mesh_facenum[i], model.mesh_texcoordadr[i]
    uv = model.mesh_texcoord[t0 + model.mesh_facetexcoord[f0:f0 + nf]].reshape(-1, 2)
    corners = np.concatenate([vertices[faces].reshape(-1, 3), uv], axis=1)
    unique, inverse = np.unique(np.round(corners, 6), axis=0, return_inverse=True)
    points, tris = unique[:, :3].astype(np.float64), inverse.reshape(-1, 3).astype(np.int32)
    _, _, collapses = fast_simplification.simplify(points, tris, target_reduction=1.0 - keep_fraction,
                                                   return_collapses=True, preserve_border=True)
    v, f, mapping = fast_simplification.replay_simplification(points, tris, collapses)
    uvs = np.zeros((len(v), 2), np.float32)
    kept = mapping >= 0
    uvs[mapping[kept]] = unique[kept, 3:]
    v, f = np.asarray(v, np.float32), np.asarray(f, np.int32)
    return LightMesh(v, f, smooth_normals(v, f), uvs)


def write(model: Any, i: int, mesh: LightMesh) -> bool:
    """Put `mesh` into mesh `i`'s blocks of the compiled model; False (nothing written) if it does not fit."""
    nv, nf = len(mesh.vertices), len(mesh.faces)
    fits = nv <= model.mesh_vertnum[i] and nv <= model.mesh_normalnum[i] and nf <= model.mesh_facenum[i]
    if mesh.uvs is not None:
        fits = fits and nv <= model.mesh_texcoordnum[i]
    if not fits or nf == 0:
        return False
    v0, n0, f0 = model.mesh_vertadr[i], model.mesh_normaladr[i], model.mesh_faceadr[i]
    model.mesh_vert[v0:v0 + nv] = mesh.vertices
    model.mesh_normal[n0:n0 + nv] = mesh.normals
    model.mesh_face[f0:f0 + nf] = mesh.faces
    model.mesh_facenormal[f0:f0 + nf] = mesh.faces
    if model.mesh_texcoordadr[i] >= 0:
        t0 = model.mesh_texcoordadr[i]
        if mesh.uvs is not None:
            model.mesh_texcoord[t0:t0 + nv] = mesh.uvs
            model.mesh_facetexcoord[f0:f0 + nf] = mesh.faces
        else:  # an untextured mesh that carries coordinates: point every corner at one valid entry
            model.mesh_facetexcoord[f0:f0 + nf] = 0
    model.mesh_facenum[i] = nf
    return True


def simplify_model(model: Any, keep_fraction: float, cache: dict | None = None) -> ModelReport:
    """Decimate the large visual-only meshes of a compiled `mujoco.MjModel` in place (see the module doc).
    `cache` (mesh name and sizes -> `LightMesh`) carries decimations over to the next model of the same scene."""
    import mujoco

    if not 0.0 < keep_fraction <= 1.0:
        raise ValueError(f"keep_fraction={keep_fraction} must be in (0, 1]")
    cache = {} if cache is None else cache
    meshes = before = after = 0
    if keep_fraction == 1.0:
        return ModelReport(0, 0, 0)
    for i, textured in sorted(visual_only_meshes(model).items()):
        nf = int(model.mesh_facenum[i])
        if nf < (MIN_TEXTURED_TRIANGLES if textured else MIN_TRIANGLES):
            continue
        key = (mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_MESH, i), int(model.mesh_vertnum[i]), nf, keep_fraction)
        if key not in cache:
            cache[key] = decimate(model, i, keep_fraction, textured)
        if write(model, i, cache[key]):
            meshes, before, after = meshes + 1, before + nf, after + int(model.mesh_facenum[i])
    return ModelReport(meshes, before, after)


__all__ = ["LightMesh", "ModelReport", "decimate", "simplify_model", "visual_only_meshes", "write"]
