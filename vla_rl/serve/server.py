"""The policy server: openpi-compatible websocket protocol, health check, API key, batching.

Protocol (what openpi-client's `WebsocketClientPolicy` speaks):
  1. The client opens a websocket (optionally with header `Authorization: Api-Key <key>`).
  2. The server sends one binary msgpack-numpy frame: metadata (policy, schema, limits).
  3. Per request the client sends one binary frame, a map of observation keys (see `schema.py`);
     the server answers a binary frame {"actions": float32 (K, A), "server_timing": {...}}, or a
     text frame "error: <what is wrong>" for a request it refuses. The connection stays open.
`GET /healthz` on the same port answers 200 "OK" (no key needed; it reveals nothing).
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import threading
import time
from http import HTTPStatus
from typing import Any, Callable
from urllib.parse import urlsplit

from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from vla_rl.serve.batcher import Batcher, InferFn, ServerBusy
from vla_rl.serve.config import ServeConfig
from vla_rl.serve.schema import ObservationSchema, RequestError, validate_request
from vla_rl.serve.wire import WireError, decode, encode

log = logging.getLogger("vla_rl.serve")

HEALTH_PATH = "/healthz"
AUTH_SCHEME = "Api-Key"
"""openpi-client sends `Authorization: Api-Key <key>`."""


class PolicyServer:
    """Answers observation -> action over websockets for one policy (see the module docstring)."""

    def __init__(self, infer: InferFn, schema: ObservationSchema, cfg: ServeConfig,
                 metadata: dict[str, Any] | None = None) -> None:
        self.infer, self.schema, self.cfg = infer, schema, cfg
        self.metadata = {
            "server": "vla-rl",
            "protocol": "openpi-websocket (msgpack-numpy)",
            **(metadata or {}),
            "schema": schema.describe(),
            "ignored_keys": schema.dropped_keys,  # accepted and dropped: the policy never reads them
            "limits": {"max_message_bytes": cfg.max_message_bytes, "max_batch_size": cfg.max_batch_size,
                       "batch_window_ms": cfg.batch_window_ms},
        }
        self.batcher: Batcher | None = None
        self.connections = 0

    # ------------------------------------------------------------------ HTTP side of the handshake
    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        if urlsplit(request.path).path == HEALTH_PATH:
            return connection.respond(HTTPStatus.OK, "OK\n")
        if self.cfg.api_key is not None:
            given = request.headers.get("Authorization", "")
            expected = f"{AUTH_SCHEME} {self.cfg.api_key}"
            if not hmac.compare_digest(given.encode(), expected.encode()):
                log.info("refused a connection from %s: missing or wrong API key", connection.remote_address)
                return connection.respond(HTTPStatus.UNAUTHORIZED,
                                          f"missing or wrong API key; send header 'Authorization: {AUTH_SCHEME} <key>'\n")
        return None

    # ------------------------------------------------------------------ websocket side
    async def _handler(self, ws: ServerConnection) -> None:
        self.connections += 1
        log.info("client connected from %s (%d open)", ws.remote_address, self.connections)
        try:
            await ws.send(encode(self.metadata))
            async for message in ws:
                await ws.send(await self._reply(message))
        except ConnectionClosed:
            pass
        finally:
            self.connections -= 1
            log.info("client %s left (%d open)", ws.remote_address, self.connections)

    async def _reply(self, message: str | bytes) -> str | bytes:
        start = time.perf_counter()
        if isinstance(message, str):
            return "error: got a text frame; send the observation as a binary msgpack-numpy frame"
        if len(message) > self.cfg.max_message_bytes:
            return (f"error: message of {len(message)} bytes exceeds the limit of {self.cfg.max_message_bytes} bytes "
                    "(serve --max-message-mb); send smaller images")
        try:
            obs = validate_request(decode(message), self.schema)
        except (WireError, RequestError) as exc:
            log.debug("refused a request: %s", exc)
            return f"error: {exc}"
        assert self.batcher is not None
        try:
            actions, timing = await self.batcher.submit(obs)
        except ServerBusy as exc:
            return f"error: {exc}"
        except Exception as exc:  # noqa: BLE001 - the policy failed on this observation; report it, keep serving
            log.warning("policy failed on a request: %s: %s", type(exc).__name__, exc)
            return f"error: the policy failed on this observation: {type(exc).__name__}: {exc}"
        timing["total_ms"] = 1000 * (time.perf_counter() - start)
        return encode({"actions": actions, "server_timing": timing})

    async def run(self, on_ready: Callable[[int], None] | None = None, stop: asyncio.Event | None = None) -> None:
        """Serve until `stop` is set (forever when None). `on_ready(port)` is called once listening."""
        self.batcher = Batcher(self.infer, self.cfg.batch_window_ms / 1000, self.cfg.max_batch_size, self.cfg.max_queue,
                               open_requesters=lambda: self.connections)
        batching = asyncio.create_task(self.batcher.run(), name="batcher")
        try:
            async with serve(self._handler, self.cfg.host, self.cfg.port, process_request=self._process_request,
                             compression=None, max_size=self.cfg.hard_limit_bytes, close_timeout=2) as server:
                port = next(iter(server.sockets)).getsockname()[1]
                if on_ready is not None:
                    on_ready(port)
                await (stop.wait() if stop is not None else asyncio.get_running_loop().create_future())
        finally:
            batching.cancel()
            await asyncio.gather(batching, return_exceptions=True)


class ServerThread:
    """A `PolicyServer` on its own event loop in a background thread (tests, benchmarks, notebooks).

        with ServerThread(server) as running:
            client = PolicyClient(running.uri)
    """

    def __init__(self, server: PolicyServer, start_timeout_s: float = 30.0) -> None:
        self.server, self.start_timeout_s = server, start_timeout_s
        self.port: int | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._main, name="policy-server", daemon=True)

    @property
    def uri(self) -> str:
        return f"ws://{self.server.cfg.host}:{self.port}"

    def _main(self) -> None:
        async def main() -> None:
            self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
            await self.server.run(on_ready=self._on_ready, stop=self._stop)

        try:
            asyncio.run(main())
        except BaseException as exc:  # noqa: BLE001 - handed to the starting thread
            self._error = exc
            self._ready.set()

    def _on_ready(self, port: int) -> None:
        self.port = port
        self._ready.set()

    def start(self) -> "ServerThread":
        self._thread.start()
        if not self._ready.wait(self.start_timeout_s):
            raise TimeoutError(f"policy server did not start within {self.start_timeout_s} s")
        if self._error is not None:
            raise RuntimeError(f"policy server failed to start: {self._error}") from self._error
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=30)

    def __enter__(self) -> "ServerThread":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


__all__ = ["AUTH_SCHEME", "HEALTH_PATH", "PolicyServer", "ServerThread"]
