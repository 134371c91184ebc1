"""`vla-rl serve CHECKPOINT`: serve a saved policy to robots over the openpi websocket protocol.

Loads the policy (a run folder, a checkpoint folder or a `policy/` folder), prints where it listens,
the request schema and the health URL, and serves until interrupted; then prints how many requests
and batches it answered. See docs/serving.md.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys

from vla_rl.cli.commands import COMMANDS, Command, run_command

API_KEY_ENV = "VLA_RL_API_KEY"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from vla_rl.serve.config import ServeConfig

    d = ServeConfig()
    parser.add_argument("checkpoint", help="run folder, checkpoint folder, or policy folder (save_pretrained output)")
    parser.add_argument("--host", default=d.host, help=f"interface to bind (default {d.host}, loopback only)")
    parser.add_argument("--port", type=int, default=d.port, help=f"TCP port (default {d.port}; 0 picks a free one)")
    parser.add_argument("--api-key", default=os.environ.get(API_KEY_ENV),
                        help=f"require 'Authorization: Api-Key KEY' from clients (default: ${API_KEY_ENV} if set)")
    parser.add_argument("--schema", default=None, help="observation schema JSON (default: the checkpoint's serve_schema.json)")
    parser.add_argument("--batch-window-ms", type=float, default=d.batch_window_ms,
                        help=f"wait this long for concurrent requests to batch (default {d.batch_window_ms})")
    parser.add_argument("--max-batch-size", type=int, default=d.max_batch_size,
                        help=f"most requests per policy call (default {d.max_batch_size})")
    parser.add_argument("--max-message-mb", type=float, default=d.max_message_mb,
                        help=f"largest request answered, MiB (default {d.max_message_mb})")
    parser.add_argument("--gripper-convention", choices=("open_positive", "close_positive"), default=None,
                        help="the robot's gripper convention, when it differs from the checkpoint's")
    parser.add_argument("--unnorm-key", default=None, help="dataset statistics to un-normalise actions with")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads for inference (default: torch's)")
    parser.add_argument("--log-level", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"))


def run(args: argparse.Namespace) -> int:
    import torch

    from vla_rl.serve.config import ServeConfig
    from vla_rl.serve.loading import load_for_serving
    from vla_rl.serve.server import HEALTH_PATH

    logging.basicConfig(level=args.log_level, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    if args.log_level != "DEBUG":  # websockets logs every handshake at INFO
        logging.getLogger("websockets").setLevel(logging.WARNING)
    cfg = ServeConfig(host=args.host, port=args.port, api_key=args.api_key, batch_window_ms=args.batch_window_ms,
                      max_batch_size=args.max_batch_size, max_message_mb=args.max_message_mb)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    try:
        loaded = load_for_serving(args.checkpoint, args.schema, args.gripper_convention, args.unnorm_key)
    except FileNotFoundError as exc:
        print(f"vla-rl serve: {exc}", file=sys.stderr)
        return 2
    server = loaded.server(cfg)
    print(f"vla-rl serve: {loaded.family} policy from {loaded.policy_dir} "
          f"(action_dim {loaded.policy.action_dim}, chunk {loaded.policy.action_chunk})")
    print(f"  schema: {loaded.schema_source}; request keys {loaded.schema.keys}")
    print(f"  batching: window {cfg.batch_window_ms} ms, up to {cfg.max_batch_size}; "
          f"API key {'required' if cfg.api_key else 'not required'}")

    if cfg.host not in ("127.0.0.1", "localhost", "::1") and cfg.api_key is None:
        print(f"  WARNING: listening on {cfg.host} without an API key; anyone who can reach this port can drive the "
              f"policy. Pass --api-key (or set ${API_KEY_ENV}).")

    def ready(port: int) -> None:
        print(f"  listening on ws://{cfg.host}:{port}  (health: http://{cfg.host}:{port}{HEALTH_PATH})", flush=True)

    async def serve_until_signalled() -> None:
        """Ctrl-C (SIGINT) or SIGTERM (`docker stop`, systemd) set an event: a clean stop that does not
        depend on where the cancellation of the main task would land."""
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            await server.run(on_ready=ready, stop=stop)
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)

    try:
        asyncio.run(serve_until_signalled())
    except KeyboardInterrupt:
        pass
    except OSError as exc:  # e.g. the port is taken
        print(f"vla-rl serve: cannot listen on {cfg.host}:{cfg.port}: {exc}; pick another --port", file=sys.stderr)
        return 1
    stats = server.batcher.stats if server.batcher else None
    if stats is not None:
        mean = stats.requests / max(stats.batches, 1)
        print(f"vla-rl serve: stopped after {stats.requests} requests in {stats.batches} batches "
              f"(mean batch {mean:.1f}, largest {stats.largest_batch}, {stats.failed} failed)")
    return 0


COMMANDS.register("serve")(Command(help="serve a saved policy to robots (openpi websocket protocol)",
                                   add_arguments=add_arguments, run=run))


def main(argv: list[str] | None = None) -> int:
    """`python -m vla_rl.cli.serve ...`: the same as `vla-rl serve ...`."""
    return run_command("serve", argv)


if __name__ == "__main__":
    sys.exit(main())
