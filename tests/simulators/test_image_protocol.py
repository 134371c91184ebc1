"""`env.image_protocol`: the openvla pipeline against the reference preprocessing rewritten here with
plain 8-bit Pillow calls (JPEG q95, Lanczos resize, 90%-area centre crop), and the config refusals.

The frame is synthetic (smooth shading, hard edges, fine texture, as a rendered scene has), so this
runs without a simulator; tests/simulators/test_libero.py repeats the comparison on a LIBERO render.
"""

from __future__ import annotations

import numpy as np
import pytest
from image_reference import close_to_reference, reference_openvla, synthetic_frame

from simulators.image_protocol import IMAGE_PROTOCOLS, lanczos_resize, openvla_image
from vla_rl.config.core import ConfigError, from_dict
from vla_rl.config.env import EnvConfig


@pytest.mark.parametrize("seed", [0, 1])
def test_openvla_protocol_matches_the_reference_pipeline(seed):
    frame = synthetic_frame(seed=seed)
    ours = openvla_image(frame, 224)
    assert ours.shape == (224, 224, 3) and ours.dtype == np.uint8
    ref = reference_openvla(frame)
    assert close_to_reference(ours, ref)
    assert IMAGE_PROTOCOLS.get("openvla").process(frame, 224).tobytes() == ours.tobytes()


def test_the_comparison_tells_each_step_apart():
    from simulators.image_protocol import centre_crop_resize, jpeg_round_trip

    frame = synthetic_frame(seed=2)
    ref = reference_openvla(frame)
    assert close_to_reference(centre_crop_resize(lanczos_resize(jpeg_round_trip(frame), 224)), ref)
    assert not close_to_reference(centre_crop_resize(lanczos_resize(frame, 224)), ref)  # no JPEG
    assert not close_to_reference(lanczos_resize(jpeg_round_trip(frame), 224), ref)  # no crop


def test_raw_protocol_renders_at_image_size_and_passes_frames_on():
    raw = IMAGE_PROTOCOLS.get("raw")
    frame = synthetic_frame(size=64)
    assert raw.render_size(64) == 64 and raw.process(frame, 64) is frame
    assert IMAGE_PROTOCOLS.get("openvla").render_size(224) == 256


def test_protocol_config_errors_name_the_fix():
    with pytest.raises(ConfigError, match="image_protocol=raw"):
        EnvConfig(backend="libero", task="libero_spatial", image_size=320, image_protocol="openvla")
    with pytest.raises(ConfigError, match="image_protocol"):
        from_dict(EnvConfig, {"image_protocol": "tf"})
    from simulators import make_env

    with pytest.raises(ConfigError, match="set env.image_protocol=raw"):
        make_env(EnvConfig(backend="maniskill", task="PushCube-v1", image_protocol="openvla", image_size=224))
