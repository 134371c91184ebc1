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


def apply_render_settings(robosuite_env: Any, mesh_detail: float, multisample: bool, cache: dict) -> bool:
    """Lighter meshes and/or no multisampling in the model robosuite just (re)built, then a fresh render
    context so that the renderer uploads them. Nothing (False) at the published settings. `cache` keeps
    the decimated meshes across resets (`simplify_model`)."""
    if mesh_detail == 1.0 and multisample:
        return False
    from simulators.libero_low_poly import simplify_model

    sim = robosuite_env.sim
    model = sim.model._model
    simplify_model(model, mesh_detail, cache)
    if not multisample:
        model.vis.quality.offsamples = 0
    context = sim._render_context_offscreen
    if context is not None:
        context.gl_ctx.make_current()
        context.con.free()
        context._set_mujoco_context_and_buffers()
    return True


__all__ = ["CameraGate", "apply_render_settings"]
