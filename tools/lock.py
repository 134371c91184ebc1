"""Write, check or refresh requirements.lock (exact versions of everything `.[all]` resolves).

    .venv/bin/python tools/lock.py check      # does this environment match the lock? (exit 1 if not)
    .venv/bin/python tools/lock.py write      # lock this environment's versions
    python3 tools/lock.py refresh             # resolve afresh in a throwaway venv, lock that, delete the venv

`refresh` is how the lock moves forward: a new venv installs torch and then `-e ".[all]"` constrained
only by tools/constraints.txt (as tools/setup.sh would without a lock), and `write` runs inside it.
Afterwards `bash tools/setup.sh` brings .venv to the new lock (its fingerprint includes the lock).
It takes a few minutes and ~4 GB of disk.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from vla_rl.lockfile import LOCK_PATH, check_lock, read_lock, write_lock  # noqa: E402


def cmd_check(lock: Path) -> int:
    mismatches = check_lock(lock)
    if not mismatches:
        print(f"lock: this environment matches {lock} ({len(read_lock(lock))} packages)")
        return 0
    print(f"lock: this environment differs from {lock} in {len(mismatches)} package(s):")
    for m in mismatches:
        print(f"  {m}")
    print("fix: `bash tools/setup.sh` installs the locked versions; after a deliberate change of dependencies, "
          "`python tools/lock.py write` (this environment) or `python tools/lock.py refresh` (a fresh resolve)")
    return 1


def cmd_write(lock: Path) -> int:
    old = read_lock(lock) if lock.is_file() else {}
    pins = write_lock(lock)
    changed = sorted(n for n in pins if old.get(n) != pins[n])
    removed = sorted(set(old) - set(pins))
    print(f"lock: wrote {lock} ({len(pins)} packages; {len(changed)} added or changed, {len(removed)} removed)")
    for name in changed:
        print(f"  {name}: {old.get(name, '-')} -> {pins[name]}")
    for name in removed:
        print(f"  {name}: {old[name]} -> -")
    return 0


def cmd_refresh(lock: Path, python: str, keep: bool) -> int:
    venv = Path(tempfile.mkdtemp(prefix="vla-rl-relock-"))
    start = time.time()
    try:
        steps = [
            [python, "-m", "venv", str(venv)],
            [str(venv / "bin/python"), "-m", "pip", "install", "-q", "-c", "tools/constraints.txt", "torch"],
            [str(venv / "bin/python"), "-m", "pip", "install", "-q", "-c", "tools/constraints.txt", "-e", ".[all]"],
            [str(venv / "bin/python"), "tools/lock.py", "write", "--lock", str(lock)],
        ]
        for i, step in enumerate(steps, 1):
            print(f"[refresh {i}/{len(steps)}] {' '.join(step)}", flush=True)
            subprocess.run(step, cwd=ROOT, check=True)
    finally:
        if keep:
            print(f"refresh: kept the venv at {venv}")
        else:
            shutil.rmtree(venv, ignore_errors=True)
    print(f"refresh: done in {time.time() - start:.0f} s; now `bash tools/setup.sh` installs the new lock into .venv")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["check", "write", "refresh"], nargs="?", default="check")
    parser.add_argument("--lock", type=Path, default=LOCK_PATH, help="lock file (default: requirements.lock)")
    parser.add_argument("--python", default=sys.executable, help="interpreter for refresh's venv")
    parser.add_argument("--keep", action="store_true", help="refresh: keep the throwaway venv")
    args = parser.parse_args(argv)
    if args.command == "check":
        return cmd_check(args.lock)
    if args.command == "write":
        return cmd_write(args.lock)
    return cmd_refresh(args.lock, args.python, args.keep)


if __name__ == "__main__":
    sys.exit(main())
