"""From a path on disk to a ready `PolicyServer`: find the policy folder, its schema, load the policy.

Accepted paths: a policy folder written by `save_pretrained` (has config.json), a checkpoint folder
containing `policy/`, a checkpoints root with a `latest` file, or a run folder containing one
(`vla_rl.checkpoints.resolve_checkpoint`). The schema is the first found of: an explicit
file, `<policy>/serve_schema.json`, `<checkpoint>/serve_schema.json`, the default schema.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vla_rl.models.base import Policy
from vla_rl.models.checkpoint_io import CONFIG_NAME
from vla_rl.serve.config import ServeConfig
from vla_rl.serve.schema import SCHEMA_FILE, ObservationSchema, load_schema
from vla_rl.serve.server import PolicyServer


def find_policy_dir(path: str | Path) -> Path:
    """The folder holding the policy's config.json and weights, for any accepted path (module docstring)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist; pass a run folder, a checkpoint folder or a policy folder")
    if (path / CONFIG_NAME).is_file():
        return path
    if (path / "policy" / CONFIG_NAME).is_file():
        return path / "policy"
    from vla_rl.checkpoints import resolve_checkpoint

    checkpoint = resolve_checkpoint(path)
    if not (checkpoint / "policy" / CONFIG_NAME).is_file():
        raise FileNotFoundError(f"checkpoint {checkpoint} has no policy/{CONFIG_NAME}; was it written completely?")
    return checkpoint / "policy"


def find_schema(policy_dir: Path, explicit: str | Path | None = None) -> tuple[ObservationSchema, str]:
    """(schema, where it came from)."""
    if explicit is not None:
        return load_schema(explicit), str(explicit)
    for candidate in (policy_dir / SCHEMA_FILE, policy_dir.parent / SCHEMA_FILE):
        if candidate.is_file():
            return load_schema(candidate), str(candidate)
    return ObservationSchema(), "default (openpi LIBERO keys)"


@dataclass
class LoadedPolicy:
    """A policy ready to serve, with what the server tells its clients."""

    policy: Policy
    policy_dir: Path
    schema: ObservationSchema
    schema_source: str
    family: str

    def metadata(self) -> dict[str, Any]:
        """What clients learn on connect (no local paths)."""
        return {"policy": {"family": self.family, "action_dim": int(self.policy.action_dim),
                           "action_chunk": int(self.policy.action_chunk)}}

    def infer(self, obs: dict[str, Any]) -> Any:
        """Greedy actions (N, K, A) for a batched observation."""
        return self.policy.act(obs, mode="greedy").actions

    def server(self, cfg: ServeConfig) -> PolicyServer:
        return PolicyServer(self.infer, self.schema, cfg, self.metadata())


def load_for_serving(path: str | Path, schema_path: str | Path | None = None, gripper_convention: str | None = None,
                     unnorm_key: str | None = None) -> LoadedPolicy:
    """Load the policy under `path` (any accepted form) in eval mode, with its schema."""
    from vla_rl.models.registry import load_policy, saved_family

    policy_dir = find_policy_dir(path)
    family = saved_family(str(policy_dir))
    policy = load_policy(str(policy_dir), gripper_convention=gripper_convention, unnorm_key=unnorm_key)
    policy.eval()
    schema, source = find_schema(policy_dir, schema_path)
    return LoadedPolicy(policy, policy_dir, schema, source, family)


__all__ = ["LoadedPolicy", "find_policy_dir", "find_schema", "load_for_serving"]
