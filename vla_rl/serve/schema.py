"""The declared mapping from a robot's request keys to the platform's observation dict.

A request is one observation as a flat msgpack map (openpi-client style), e.g.
    {"observation/image": uint8 (H, W, 3), "observation/wrist_image": uint8 (H, W, 3),
     "observation/state": float (P,), "prompt": "put the bowl on the plate"}
and the server turns a batch of them into the observation the policy reads (`simulators.base`):
    {"images": {"main": uint8 (N, H, W, 3), ...}, "proprio": float32 (N, P), "instruction": [str] * N}

Each checkpoint declares its schema in `serve_schema.json` (in the checkpoint or its `policy/` folder,
or given with `vla-rl serve --schema`); without one the default below (the LIBERO keys of
openpi-client examples) applies. `validate_request` checks a decoded request against the schema and
raises `RequestError` naming the key and the fix; nothing invalid reaches the policy.

openpi's example clients send every key of their robot's layout (`OPENPI_LAYOUTS`): the LIBERO client
sends the wrist image even to a policy trained on the main camera alone. Keys of those layouts that
the schema does not read are accepted and dropped (`ObservationSchema.dropped_keys`, listed in the
server's metadata); any other unknown key is an error.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vla_rl.config.core import check, from_dict, to_dict

SCHEMA_FILE = "serve_schema.json"
"""File name a checkpoint's schema is stored under."""

OPENPI_LAYOUTS: dict[str, tuple[str, ...]] = {
    "libero": ("observation/image", "observation/wrist_image", "observation/state", "prompt"),
    "aloha": ("images", "state", "prompt"),  # images: {cam_high, cam_low, cam_left_wrist, cam_right_wrist}
    "droid": ("observation/exterior_image_1_left", "observation/wrist_image_left", "observation/joint_position",
              "observation/gripper_position", "prompt"),
}
"""Request keys of openpi's example observation layouts (openpi examples/simple_client/main.py, the
`_random_observation_*` functions; examples/libero/main.py sends the LIBERO keys)."""


class RequestError(ValueError):
    """A request the schema refuses; the text names the key at fault and how to fix it."""


@dataclass
class CameraField:
    """One image in the request."""

    key: str
    """Request key, e.g. "observation/image"."""
    camera: str
    """Platform camera name it fills in obs["images"], e.g. "main" or "wrist"."""
    required: bool = True
    """Refuse requests without this image (False: accepted and passed on when present)."""


@dataclass
class StateField:
    """One piece of the robot state; the pieces are concatenated in order into obs["proprio"]."""

    key: str
    """Request key, e.g. "observation/state" or "observation/joint_position"."""
    size: int | None = None
    """Expected length of this vector; None accepts any length."""

    def __post_init__(self) -> None:
        check(self.size is None or self.size >= 0, f"state field {self.key!r}: size={self.size} must be >= 0 or null")


@dataclass
class ObservationSchema:
    """Request keys -> platform observation. The default matches openpi-client's LIBERO example."""

    cameras: tuple[CameraField, ...] = (
        CameraField("observation/image", "main"),
        CameraField("observation/wrist_image", "wrist", required=False),
    )
    """Images of the request and the camera each one fills."""
    state: tuple[StateField, ...] = (StateField("observation/state"),)
    """State vectors, concatenated in this order into obs["proprio"]."""
    state_required: bool = False
    """Refuse requests without the state (set it for policies that read proprio); otherwise proprio is (N, 0)."""
    prompt_key: str = "prompt"
    """Request key of the language instruction."""
    default_prompt: str | None = None
    """Instruction used when a request has no prompt; None makes the prompt required."""
    image_size: tuple[int, int] | None = None
    """(height, width) every image must have; None accepts any size (the policy resizes)."""
    max_image_side: int = 2048
    """Largest height or width accepted, pixels."""
    max_prompt_chars: int = 2000
    """Longest instruction accepted, characters."""
    ignored_keys: tuple[str, ...] = ()
    """Request keys accepted and dropped (e.g. metadata a client always sends); any other key is an error."""
    drop_openpi_layout_keys: bool = True
    """Accept and drop keys of openpi's example layouts (OPENPI_LAYOUTS) this schema does not read; false refuses them."""

    def __post_init__(self) -> None:
        keys = [c.key for c in self.cameras] + [s.key for s in self.state] + [self.prompt_key, *self.ignored_keys]
        dupes = sorted({k for k in keys if keys.count(k) > 1})
        check(not dupes, f"serve schema uses request key(s) {dupes} twice; give each field its own key")
        cams = [c.camera for c in self.cameras]
        check(len(set(cams)) == len(cams), f"serve schema maps two keys to one camera ({cams}); one key per camera")
        check(any(c.required for c in self.cameras), "serve schema has no required camera; mark the main image required")
        check(self.image_size is None or (len(self.image_size) == 2 and min(self.image_size) >= 1),
              f"serve schema image_size={self.image_size} must be [height, width] or null")
        check(self.max_image_side >= 1, f"serve schema max_image_side={self.max_image_side} must be >= 1")
        check(self.max_prompt_chars >= 1, f"serve schema max_prompt_chars={self.max_prompt_chars} must be >= 1")
        check(not (self.state_required and not self.state), "serve schema state_required=true needs at least one state field")

    @property
    def read_keys(self) -> list[str]:
        """The request keys that reach the policy."""
        return [c.key for c in self.cameras] + [s.key for s in self.state] + [self.prompt_key]

    @property
    def dropped_keys(self) -> list[str]:
        """Request keys accepted and dropped: `ignored_keys`, and the openpi layouts' keys not read."""
        dropped = list(self.ignored_keys)
        if self.drop_openpi_layout_keys:
            read = set(self.read_keys)
            for layout in OPENPI_LAYOUTS.values():
                dropped += [k for k in layout if k not in read and k not in dropped]
        return dropped

    @property
    def keys(self) -> list[str]:
        """Every request key the schema accepts."""
        return self.read_keys + self.dropped_keys

    def describe(self) -> dict[str, Any]:
        """The schema as plain data (the fields above), sent in the metadata frame; `from_dict` rebuilds it."""
        return to_dict(self)


@dataclass(eq=False)
class Observation:
    """One validated request, in platform terms (images by camera, float32 proprio, instruction)."""

    images: dict[str, np.ndarray] = field(default_factory=dict)
    proprio: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    instruction: str = ""

    @property
    def signature(self) -> tuple:
        """Requests with equal signatures stack into one batch."""
        return tuple(sorted((c, a.shape) for c, a in self.images.items())), self.proprio.shape


def _check_image(key: str, value: Any, schema: ObservationSchema) -> np.ndarray:
    if not isinstance(value, np.ndarray):
        raise RequestError(f"{key} must be a numpy uint8 array of shape (H, W, 3), got {type(value).__name__}")
    if value.dtype != np.uint8:
        raise RequestError(f"{key} has dtype {value.dtype}; send uint8 pixels 0..255 (e.g. (img * 255).astype(np.uint8))")
    if value.ndim != 3 or value.shape[-1] != 3:
        hint = "; transpose a (3, H, W) image with img.transpose(1, 2, 0)" if value.ndim == 3 and value.shape[0] == 3 else ""
        raise RequestError(f"{key} has shape {value.shape}; send one RGB image of shape (H, W, 3){hint}")
    h, w = value.shape[:2]
    if min(h, w) < 1 or max(h, w) > schema.max_image_side:
        raise RequestError(f"{key} is {h}x{w}; height and width must be between 1 and {schema.max_image_side}")
    if schema.image_size is not None and (h, w) != tuple(schema.image_size):
        raise RequestError(f"{key} is {h}x{w}; this checkpoint expects {schema.image_size[0]}x{schema.image_size[1]}")
    return value


def _check_state(field_: StateField, value: Any) -> np.ndarray:
    key = field_.key
    if not isinstance(value, np.ndarray):
        raise RequestError(f"{key} must be a numpy float array of shape (P,), got {type(value).__name__}")
    if value.dtype.kind not in "iuf":
        raise RequestError(f"{key} has dtype {value.dtype}; send a float (or integer) vector")
    if value.ndim != 1:
        raise RequestError(f"{key} has shape {value.shape}; send a 1-D vector of shape (P,)")
    if field_.size is not None and value.shape[0] != field_.size:
        raise RequestError(f"{key} has length {value.shape[0]}; this checkpoint expects {field_.size}")
    with np.errstate(over="ignore"):
        state = value.astype(np.float32)
    bad = np.flatnonzero(~np.isfinite(state))
    if bad.size:
        raise RequestError(f"{key} has non-finite values (NaN or inf, or too large for float32) at indices {bad[:8].tolist()}")
    return state


def validate_request(request: Any, schema: ObservationSchema) -> Observation:
    """One decoded request -> `Observation`, or RequestError naming the problem."""
    if not isinstance(request, dict):
        raise RequestError(f"a request must be a msgpack map of observation keys, got {type(request).__name__}")
    non_str = [k for k in request if not isinstance(k, str)]
    if non_str:
        raise RequestError(f"request keys must be strings, got {non_str[:4]!r}")
    accepted = set(schema.keys)
    unknown = sorted(k for k in request if k not in accepted)
    if unknown:
        raise RequestError(f"unknown request key(s) {unknown}; this server reads {schema.read_keys} and drops "
                           f"{schema.dropped_keys} (declare extra keys in {SCHEMA_FILE} under ignored_keys)")
    obs = Observation()
    for cam in schema.cameras:
        if cam.key in request:
            obs.images[cam.camera] = _check_image(cam.key, request[cam.key], schema)
        elif cam.required:
            raise RequestError(f"missing image {cam.key!r} (camera {cam.camera!r}); send it as uint8 (H, W, 3)")
    present = [s.key for s in schema.state if s.key in request]
    if present and len(present) != len(schema.state):
        missing = [s.key for s in schema.state if s.key not in request]
        raise RequestError(f"missing state key(s) {missing}; the state is {[s.key for s in schema.state]} concatenated")
    if not present and schema.state_required:
        raise RequestError(f"missing state {[s.key for s in schema.state]}; this checkpoint reads the robot state")
    if present:
        obs.proprio = np.concatenate([_check_state(s, request[s.key]) for s in schema.state])
    prompt = request.get(schema.prompt_key, schema.default_prompt)
    if prompt is None:
        raise RequestError(f"missing {schema.prompt_key!r}: send the task instruction as a string")
    if not isinstance(prompt, str):
        raise RequestError(f"{schema.prompt_key!r} must be a string, got {type(prompt).__name__}")
    if len(prompt) > schema.max_prompt_chars:
        raise RequestError(f"{schema.prompt_key!r} has {len(prompt)} characters; the limit is {schema.max_prompt_chars}")
    obs.instruction = prompt
    return obs


def stack_observations(items: list[Observation]) -> dict[str, Any]:
    """Observations with one signature -> the platform's batched observation dict."""
    first = items[0]
    return {
        "images": {cam: np.stack([o.images[cam] for o in items]) for cam in first.images},
        "proprio": np.stack([o.proprio for o in items]).astype(np.float32),
        "instruction": [o.instruction for o in items],
    }


def request_from_obs(obs: dict[str, Any], index: int, schema: ObservationSchema) -> dict[str, Any]:
    """The request a robot would send for environment `index` of a batched platform observation."""
    request: dict[str, Any] = {}
    for cam in schema.cameras:
        if cam.camera in obs["images"]:
            request[cam.key] = np.ascontiguousarray(obs["images"][cam.camera][index])  # no cast: the server checks
    proprio = np.asarray(obs.get("proprio", np.zeros((index + 1, 0))))[index].astype(np.float32)
    if schema.state and proprio.size:
        sizes = [s.size for s in schema.state]
        if len(sizes) == 1:
            request[schema.state[0].key] = proprio
        elif None in sizes or sum(sizes) != proprio.size:
            raise ValueError(f"cannot split proprio of length {proprio.size} into state fields {sizes}; "
                             f"declare every state field's size in {SCHEMA_FILE}")
        else:
            for s, part in zip(schema.state, np.split(proprio, np.cumsum(sizes)[:-1])):
                request[s.key] = part
    request[schema.prompt_key] = str(obs["instruction"][index])
    return request


def load_schema(path: str | Path) -> ObservationSchema:
    """Read a schema JSON file (the fields of `ObservationSchema`; unknown keys are errors)."""
    with open(path) as f:
        data = json.load(f)
    return from_dict(ObservationSchema, data, source=str(path))


def save_schema(schema: ObservationSchema, path: str | Path) -> None:
    """Write `schema` as JSON (e.g. into a checkpoint folder as serve_schema.json)."""
    Path(path).write_text(json.dumps(to_dict(schema), indent=2) + "\n")


def schema_for_env(cameras: tuple[str, ...], proprio_dim: int, reads_proprio: bool = False) -> ObservationSchema:
    """The schema of a policy trained on an environment with these cameras and proprio size (openpi LIBERO keys:
    main -> observation/image, wrist -> observation/wrist_image, other -> observation/<name>_image)."""
    names = {"main": "observation/image", "wrist": "observation/wrist_image"}
    fields = tuple(CameraField(names.get(c, f"observation/{c}_image"), c) for c in cameras)
    return ObservationSchema(cameras=fields, state=(StateField("observation/state", proprio_dim),),
                             state_required=reads_proprio)


__all__ = ["OPENPI_LAYOUTS", "SCHEMA_FILE", "CameraField", "Observation", "ObservationSchema", "RequestError", "StateField",
           "load_schema", "request_from_obs", "save_schema", "schema_for_env", "stack_observations",
           "validate_request"]
