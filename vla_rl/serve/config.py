"""Settings of the policy server: where it listens, who may connect, how requests are batched."""

from __future__ import annotations

from dataclasses import dataclass

from vla_rl.config.core import check


@dataclass
class ServeConfig:
    """One policy server (`vla-rl serve`)."""

    # --- network
    host: str = "127.0.0.1"
    """Interface to bind; loopback by default. Use 0.0.0.0 only on a trusted network, with api_key set."""
    port: int = 8000
    """TCP port (0 picks a free one; the bound port is printed)."""
    api_key: str | None = None
    """When set, websocket clients must send `Authorization: Api-Key <key>` (what openpi-client sends)."""

    # --- batching
    batch_window_ms: float = 5.0
    """After the first request arrives, wait this long for others to join its batch."""
    max_batch_size: int = 16
    """Most requests answered by one policy call."""

    # --- limits
    max_message_mb: float = 16.0
    """Requests larger than this are answered with an error; 4x this closes the connection (never buffered)."""
    max_queue: int = 256
    """Most requests waiting for the policy; beyond it a request is answered 'server busy'."""

    def __post_init__(self) -> None:
        check(bool(self.host), "serve.host is empty; use 127.0.0.1 (loopback) or an interface address")
        check(0 <= self.port <= 65535, f"serve.port={self.port} must be between 0 and 65535")
        check(self.api_key is None or len(self.api_key) >= 1, "serve.api_key is empty; pass a key or leave it unset")
        check(self.batch_window_ms >= 0, f"serve.batch_window_ms={self.batch_window_ms} must be >= 0")
        check(self.max_batch_size >= 1, f"serve.max_batch_size={self.max_batch_size} must be >= 1")
        check(self.max_message_mb > 0, f"serve.max_message_mb={self.max_message_mb} must be > 0")
        check(self.max_queue >= self.max_batch_size,
              f"serve.max_queue={self.max_queue} must be >= serve.max_batch_size={self.max_batch_size}")

    @property
    def max_message_bytes(self) -> int:
        """Largest request answered normally."""
        return int(self.max_message_mb * 2**20)

    @property
    def hard_limit_bytes(self) -> int:
        """Largest websocket message read at all; a larger one closes the connection (code 1009)."""
        return 4 * self.max_message_bytes


__all__ = ["ServeConfig"]
