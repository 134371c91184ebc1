"""Client side of the protocol: one robot's connection, a policy-shaped adapter, and remote evaluation.

`PolicyClient` is written from the protocol description in `server.py` (not from openpi-client) and
is what a robot-side program or `vla_rl.robots.control_loop` uses. `RemotePolicy` looks like a
`Policy` to `vla_rl.eval.episodes.evaluate_policy`: each environment of a batched observation is
one robot with its own connection, so `evaluate_remote` exercises exactly the network path a real
robot takes (schema mapping, encoding, batching on the server) with the in-process episode loop.
"""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
from websockets.sync.client import ClientConnection, connect

from vla_rl.config.core import from_dict
from vla_rl.serve.schema import ObservationSchema, request_from_obs
from vla_rl.serve.server import AUTH_SCHEME
from vla_rl.serve.wire import decode, encode

if TYPE_CHECKING:
    from vla_rl.eval.episode_stats import EpisodeStats


class ServerError(RuntimeError):
    """The server answered a request with an error (a text frame); the message is the server's."""


class PolicyClient:
    """One synchronous connection to a policy server.

        with PolicyClient("ws://127.0.0.1:8000") as client:
            actions = client.infer({"observation/image": img, "observation/state": q, "prompt": "..."})["actions"]
    """

    def __init__(self, uri: str, api_key: str | None = None, open_timeout_s: float = 10.0) -> None:
        headers = {"Authorization": f"{AUTH_SCHEME} {api_key}"} if api_key else None
        self.uri = uri
        self._stack = ExitStack()  # `with connect(...)` is the form every websockets version accepts
        self._ws: ClientConnection = self._stack.enter_context(
            connect(uri, compression=None, max_size=None, additional_headers=headers, open_timeout=open_timeout_s, proxy=None))
        try:
            first = self._ws.recv(timeout=open_timeout_s)
        except BaseException:
            self.close()
            raise
        if isinstance(first, str):
            self.close()
            raise ServerError(f"server at {uri} sent text instead of its metadata frame: {first}")
        self.metadata: dict[str, Any] = decode(first)

    def schema(self) -> ObservationSchema:
        """The observation schema the server declared in its metadata."""
        return from_dict(ObservationSchema, self.metadata["schema"], prefix="schema", source=self.uri)

    def send(self, request: dict[str, Any]) -> None:
        """Send one observation (a map of request keys) without waiting for the answer."""
        self._ws.send(encode(request))

    def receive(self, timeout_s: float | None = 60.0) -> dict[str, Any]:
        """The answer to the oldest unanswered `send`; ServerError when the server refused it."""
        reply = self._ws.recv(timeout=timeout_s)
        if isinstance(reply, str):
            raise ServerError(reply)
        return decode(reply)

    def infer(self, request: dict[str, Any], timeout_s: float | None = 60.0) -> dict[str, Any]:
        """{"actions": (K, A), "server_timing": {...}} for one observation."""
        self.send(request)
        return self.receive(timeout_s)

    def close(self) -> None:
        self._stack.close()

    def __enter__(self) -> "PolicyClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass
class RemoteActions:
    """What `RemotePolicy.act` returns: the `actions` field of `ActOutput`, plus the server's timings."""

    actions: np.ndarray
    """float32 (N, K, A)."""
    server_timing: list[dict[str, float]] = field(default_factory=list)


class RemotePolicy:
    """Policy-shaped access to a server: `act(obs)` sends environment i's observation over connection i."""

    def __init__(self, uri: str, num_envs: int, api_key: str | None = None) -> None:
        self.clients: list[PolicyClient] = []
        try:
            for _ in range(num_envs):
                self.clients.append(PolicyClient(uri, api_key))
        except BaseException:
            self.close()
            raise
        self.schema = self.clients[0].schema()
        self.metadata = self.clients[0].metadata

    def act(self, obs: dict[str, Any], mode: str = "greedy", temperature: float = 1.0) -> RemoteActions:
        """Actions (N, K, A) for a batched platform observation; the server always decodes greedily."""
        if mode != "greedy":
            raise ValueError(f"the policy server decodes greedily; evaluate with mode='greedy' (got {mode!r})")
        n = len(obs["instruction"])
        if n > len(self.clients):
            raise ValueError(f"observation holds {n} environments but this RemotePolicy has {len(self.clients)} connections")
        for i in range(n):  # all requests out first, so the server can batch them
            self.clients[i].send(request_from_obs(obs, i, self.schema))
        replies = [self.clients[i].receive() for i in range(n)]
        actions = np.stack([np.asarray(r["actions"], dtype=np.float32) for r in replies])
        return RemoteActions(actions, [r.get("server_timing", {}) for r in replies])

    def close(self) -> None:
        for client in self.clients:
            client.close()

    def __enter__(self) -> "RemotePolicy":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def evaluate_remote(env: Any, uri: str, reset_ids: Sequence[int], api_key: str | None = None,
                    progress: bool = False) -> "EpisodeStats":
    """One episode per reset id of `env` (auto-reset off), every action fetched from the server at `uri`
    through one connection per environment; returns `vla_rl.eval.episode_stats.EpisodeStats`."""
    from vla_rl.eval.episodes import evaluate_policy

    with RemotePolicy(uri, env.num_envs, api_key) as remote:
        return evaluate_policy(env, remote, reset_ids, mode="greedy", progress=progress)


__all__ = ["PolicyClient", "RemoteActions", "RemotePolicy", "ServerError", "evaluate_remote"]
