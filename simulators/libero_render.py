"""What a LIBERO worker renders, and at what cost: the camera gate and the renderer's cost settings.

On a CPU (MuJoCo through EGL or OSMesa on Mesa's llvmpipe) rendering is most of a LIBERO step: two
cameras at 128 px take ~10x the physics of one 20 Hz step. Two ways to pay less:

**Render only the observations that are used** (always on; images unchanged). robosuite renders every
camera once per `env.step` (and many times per reset), but a chunk of K actions hands the policy only
its last observation, and the settle steps after a reset only their last. `CameraGate` swaps the
camera observables' sensors for a stand-in that returns a blank frame on the steps whose observation
nobody reads. robosuite's sampling clock still runs exactly as before (the stand-in is called at the
same sub-step the camera would have been), so the frame rendered at the step that is observed is the
one the eager loop renders, bit for bit (`tests/simulators/test_libero_render.py`). One frame is not:
when an unobserved step ends the episode (success inside a chunk), `CameraGate.render_now` renders
the state at the end of that step, where robosuite samples its cameras at the step's first physics
sub-step; that frame only closes the episode and is never acted on.

**Keep the render context across resets** (always on; images unchanged). A robosuite hard reset (the
benchmark's `env.reset()`) rebuilds the model from XML and then a new GL and MuJoCo render context,
which uploads every texture and mesh again (LIBERO scenes carry 4096 px textures: about a second per
reset on a CPU). `RenderContextKeeper` hands the new model the previous context instead when the
model's meshes and textures are the ones uploaded (`render_fingerprint`); the scene's placement and
materials are read from the model at each frame, so frames do not change.

**Cheaper render settings** (off by default; images change by a measured amount): `env.mesh_detail` < 1
decimates the large visual-only meshes (`simulators/libero_low_poly.py`), `env.multisample: false`
turns MuJoCo's 4x multisampled offscreen buffer off. robosuite rebuilds the model on every hard reset,
so `apply_render_settings` runs after each reset and then rebuilds the render context so that the
renderer uploads the lighter meshes.
"""

from __future__ import annotations

from typing import Any

import numpy as np


class CameraGate:
    """Turns the rendering of a robosuite env's camera observables off and on, sensor by sensor."""

    def __init__(self, observable_names: list[str]) -> None:
        self._names = observable_names
        self._env: Any = None
        self._real: dict[str, Any] = {}
        self._blank: dict[str, Any] = {}
        self.rendering = True

    def attach(self, env: Any) -> None:
        """Take the camera sensors of robosuite env `env` (after every hard reset: robosuite installs new ones)."""
        self._env = env
        self._real = {n: env._observables[n]._sensor for n in self._names}
        self._blank = {n: _blank_sensor(self._real[n], env._observables[n]._data_shape) for n in self._names}
        self.rendering = True

    def set(self, rendering: bool) -> None:
        """Render the cameras at the next sample (True) or hand robosuite blank frames (False)."""
        if rendering != self.rendering:
            for n in self._names:
                self._env._observables[n]._sensor = (self._real if rendering else self._blank)[n]
            self.rendering = rendering

    def render_now(self) -> dict[str, np.ndarray]:
        """Each camera rendered at the simulator's current state, as robosuite's sensor returns it."""
        return {n: np.asarray(self._real[n](self._env._obs_cache)) for n in self._names}


def _blank_sensor(real: Any, shape: tuple[int, ...]) -> Any:
    frame = np.zeros(shape, np.uint8)

    def blank(obs_cache: dict) -> np.ndarray:
        return frame

    blank.__modality__ = real.__modality__  # robosuite's `@sensor` decorator marks it so
    return blank


def render_fingerprint(model: Any) -> tuple:
    """What a MuJoCo render context holds of a model: mesh and texture sizes and contents (textures sampled)."""
    import hashlib

    digest = hashlib.blake2b(digest_size=16)
    for array in (model.mesh_vertnum, model.mesh_facenum, model.mesh_vert, model.mesh_face, model.mesh_normal,
                  model.mesh_texcoord, model.tex_width, model.tex_height, model.tex_nchannel, model.tex_adr,
                  model.tex_data[::4099], model.vis.global_.offwidth, model.vis.global_.offheight):
        digest.update(np.ascontiguousarray(array).tobytes())
    return int(model.nmesh), int(model.ntex), int(model.nskin), int(model.nhfield), digest.hexdigest()


class RenderContextKeeper:
    """Gives each model a robosuite env builds at a hard reset the render context of the model before it,
    when both hold the same meshes and textures (see the module doc)."""

    def __init__(self) -> None:
        self._context: Any = None
        self._fingerprint: tuple | None = None
        self.reused = 0

    def install(self, robosuite_env: Any) -> None:
        """Wrap `robosuite_env._initialize_sim` (it builds the new MjSim at every hard reset) on this instance."""
        build = robosuite_env._initialize_sim

        def initialize_sim(xml_string: Any = None) -> None:
            build(xml_string)
            self._attach(robosuite_env.sim)

        robosuite_env._initialize_sim = initialize_sim

    def keep(self, sim: Any, fingerprint: tuple) -> None:
        """Remember `sim`'s render context and the fingerprint of the (unmodified) model it was built from."""
        self._context, self._fingerprint = sim._render_context_offscreen, fingerprint

    def _attach(self, sim: Any) -> None:
        import mujoco

        context = self._context
        if context is None or render_fingerprint(sim.model._model) != self._fingerprint:
            return
        context.gl_ctx.make_current()
        context.sim, context.model, context.data = sim, sim.model, sim.data
        context.scn = mujoco.MjvScene(sim.model._model, maxgeom=1000)
        sim._render_context_offscreen = context  # robosuite's _reset_internal then builds none
        self.reused += 1

    def holds(self, sim: Any) -> bool:
        """Whether `sim` renders with the kept context."""
        return self._context is not None and sim._render_context_offscreen is self._context

    def release(self) -> None:
        self._context = self._fingerprint = None


def apply_render_settings(robosuite_env: Any, mesh_detail: float, multisample: bool, cache: dict,
                          upload: bool = True) -> bool:
    """Lighter meshes and/or no multisampling in the model robosuite just (re)built and, with `upload`, a fresh
    MuJoCo render context so that the renderer uploads them (a context kept from the model before already holds
    them). Nothing (False) at the published settings. `cache` keeps the decimated meshes (`simplify_model`)."""
    if mesh_detail == 1.0 and multisample:
        return False
    from simulators.libero_low_poly import simplify_model

    sim = robosuite_env.sim
    model = sim.model._model
    simplify_model(model, mesh_detail, cache)
    if not multisample:
        model.vis.quality.offsamples = 0
    context = sim._render_context_offscreen
    if upload and context is not None:
        context.gl_ctx.make_current()
        context.con.free()
        context._set_mujoco_context_and_buffers()
    return True


__all__ = ["CameraGate", "RenderContextKeeper", "apply_render_settings", "render_fingerprint"]
