"""The output folder of a benchmark evaluation, which is also its resume state.

    <out>/protocol.json          the protocol's signature and the policy's hash, written first
    <out>/episodes/r000123.json  one record per finished episode (reset id, task, init state,
                                 success, return, length), each written atomically when it ends

A killed evaluation restarted on the same folder runs only the episodes without a record. A folder
written under another protocol, or by another policy, is refused with a message naming what differs
and the fix: resuming it would pair episodes that are not comparable.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from vla_rl.checkpoints import write_text_atomic
from vla_rl.config.core import ConfigError
from vla_rl.eval.benchmark_protocol import BenchmarkProtocol

PROTOCOL_FILE = "protocol.json"
EPISODES_DIR = "episodes"


def episode_path(out_dir: Path, reset_id: int) -> Path:
    return out_dir / EPISODES_DIR / f"r{reset_id:06d}.json"


class EpisodeStore:
    """Per-episode records of one benchmark evaluation in `out_dir` (see the module docstring)."""

    def __init__(self, out_dir: str | Path, protocol: BenchmarkProtocol, policy_sha256: str) -> None:
        self.out_dir = Path(out_dir)
        self.protocol = protocol
        self.policy_sha256 = policy_sha256

    def open(self) -> "EpisodeStore":
        """Create the folder, or check that an existing one was written by this protocol and policy."""
        path = self.out_dir / PROTOCOL_FILE
        header = {"protocol": self.protocol.signature(), "policy_sha256": self.policy_sha256}
        if path.is_file():
            self._check_same(json.loads(path.read_text()), header)
        else:
            (self.out_dir / EPISODES_DIR).mkdir(parents=True, exist_ok=True)
            write_text_atomic(path, json.dumps(header, indent=2) + "\n")
        (self.out_dir / EPISODES_DIR).mkdir(parents=True, exist_ok=True)
        return self

    def _check_same(self, stored: dict[str, Any], header: dict[str, Any]) -> None:
        fix = f"evaluate into another folder (--out), or delete {self.out_dir} to start over"
        old, new = stored.get("protocol", {}), header["protocol"]
        differ = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
        if differ:
            shown = "; ".join(f"{k}: {_short(old.get(k))} there, {_short(new.get(k))} now" for k in differ[:4])
            raise ConfigError(f"{self.out_dir} holds an evaluation under another protocol ({shown}); {fix}")
        if stored.get("policy_sha256") != header["policy_sha256"]:
            raise ConfigError(f"{self.out_dir} holds an evaluation of another policy (its weights hash differently); {fix}")

    def done(self) -> dict[int, dict[str, Any]]:
        """reset id -> record of every finished episode of this protocol."""
        wanted = set(self.protocol.reset_ids())
        out = {}
        for path in sorted((self.out_dir / EPISODES_DIR).glob("r*.json")):
            record = json.loads(path.read_text())
            if int(record["reset_id"]) in wanted:
                out[int(record["reset_id"])] = record
        return out

    def write(self, reset_id: int, success: bool, episode_return: float, length: int) -> dict[str, Any]:
        record = {"reset_id": int(reset_id), "task": self.protocol.task_of(reset_id),
                  "init_state": self.protocol.state_of(reset_id), "success": bool(success),
                  "return": float(episode_return), "length": int(length)}
        write_text_atomic(episode_path(self.out_dir, reset_id), json.dumps(record) + "\n")
        return record


def _short(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."


__all__ = ["EPISODES_DIR", "EpisodeStore", "PROTOCOL_FILE", "episode_path"]
