"""Serving trained policies to robots over the openpi websocket protocol (see docs/serving.md).

Server: `load_for_serving(path).server(ServeConfig(...))` then `PolicyServer.run()` (or `ServerThread`).
Client: `PolicyClient` (one robot), `RemotePolicy` / `evaluate_remote` (a simulator as N robots).
"""

from vla_rl.serve.client import PolicyClient, RemoteActions, RemotePolicy, ServerError, evaluate_remote
from vla_rl.serve.config import ServeConfig
from vla_rl.serve.loading import LoadedPolicy, find_policy_dir, load_for_serving
from vla_rl.serve.schema import CameraField, ObservationSchema, RequestError, StateField, load_schema, save_schema, schema_for_env
from vla_rl.serve.server import PolicyServer, ServerThread

__all__ = [
    "CameraField", "LoadedPolicy", "ObservationSchema", "PolicyClient", "PolicyServer", "RemoteActions", "RemotePolicy",
    "RequestError", "ServeConfig", "ServerError", "ServerThread", "StateField", "evaluate_remote", "find_policy_dir",
    "load_for_serving", "load_schema", "save_schema", "schema_for_env",
]
