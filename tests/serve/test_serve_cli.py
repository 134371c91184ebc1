"""`vla-rl serve` as a process: finds the policy in a run folder, listens, answers openpi-client,
reports health, stops on Ctrl-C with a summary. Also the path forms the loader accepts."""

import json
import os
import signal
import subprocess
import sys
import urllib.request

import numpy as np
import pytest
from openpi_client.websocket_client_policy import WebsocketClientPolicy

from vla_rl.serve import find_policy_dir, load_for_serving, save_schema, schema_for_env

pytestmark = pytest.mark.filterwarnings("ignore:connect.. must be used as a context manager:DeprecationWarning")


def test_policy_folder_is_found_from_every_accepted_path(run_dir, tmp_path):
    policy = run_dir / "checkpoints" / "iter-000003" / "policy"
    for path in (run_dir, run_dir / "checkpoints", run_dir / "checkpoints" / "iter-000003", policy):
        assert find_policy_dir(path) == policy
    with pytest.raises(FileNotFoundError, match="is not a checkpoint"):
        find_policy_dir(tmp_path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        find_policy_dir(tmp_path / "nope")


def test_checkpoint_schema_file_is_used(run_dir, tmp_path):
    import shutil

    copy = tmp_path / "ckpt"
    shutil.copytree(run_dir / "checkpoints" / "iter-000003", copy)
    save_schema(schema_for_env(("main",), 9, reads_proprio=True), copy / "serve_schema.json")
    loaded = load_for_serving(copy)
    assert loaded.schema.state_required and loaded.schema.state[0].size == 9
    assert loaded.schema_source.endswith("serve_schema.json")


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_serve_command_end_to_end(run_dir, make_request, direct, stop_signal):
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "VLA_RL_API_KEY": "k1"}
    proc = subprocess.Popen([sys.executable, "-m", "vla_rl.cli.serve", str(run_dir), "--port", "0", "--threads", "1"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        lines = []
        for line in proc.stdout:
            lines.append(line)
            if "listening on ws://" in line:
                break
        banner = "".join(lines)
        assert "openvla policy from" in banner and "API key required" in banner, banner
        uri = line.split("listening on ")[1].split()[0]
        assert uri.startswith("ws://127.0.0.1:"), line
        with urllib.request.urlopen(uri.replace("ws://", "http://") + "/healthz", timeout=10) as response:
            assert response.read() == b"OK\n"
        client = WebsocketClientPolicy(host=uri, api_key="k1")
        assert json.dumps(client.get_server_metadata()["schema"])  # plain data
        np.testing.assert_array_equal(client.infer(make_request(50))["actions"], direct(make_request(50)))
        proc.send_signal(stop_signal)  # with the client still connected: the server closes it
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, out
    assert "stopped after 1 requests in 1 batches" in out
