"""requirements.lock: this environment matches it, a changed version or a missing entry is caught, and the
evaluation manifest records the lock's hash."""

from __future__ import annotations

import hashlib
import importlib.metadata as metadata
import subprocess
import sys
from pathlib import Path

import pytest

from vla_rl.lockfile import LOCK_PATH, check_lock, current_pins, lock_facts, read_lock, render_lock

ROOT = Path(__file__).resolve().parents[1]


def test_installed_versions_match_the_lock():
    mismatches = check_lock()
    assert not mismatches, (
        "the installed packages differ from requirements.lock:\n  " + "\n  ".join(map(str, mismatches)) +
        "\nfix: `bash tools/setup.sh` (installs the lock), or after a deliberate dependency change "
        "`python tools/lock.py write` and commit the lock")


def test_lock_pins_torch_without_a_local_build_label():
    locked = read_lock()
    assert "+" not in locked["torch"] and locked["torch"] == metadata.version("torch").split("+")[0]
    assert "vla-rl" not in locked  # the project itself is not locked


def test_a_changed_or_missing_version_is_a_mismatch(tmp_path):
    pins = current_pins()
    changed = dict(pins, transformers="5.0.0")
    del changed["numpy"]
    lock = tmp_path / "requirements.lock"
    lock.write_text(render_lock(changed))
    found = {m.name: m for m in check_lock(lock)}
    assert set(found) == {"transformers", "numpy"}
    assert (found["transformers"].locked, found["transformers"].installed) == ("5.0.0", metadata.version("transformers"))
    assert found["numpy"].locked is None and "not in the lock" in str(found["numpy"])
    # a locked package that the closure requires but that is not installed
    pyproject = tmp_path / "pyproject.toml"
    text = (ROOT / "pyproject.toml").read_text().replace('"psutil>=5.9",', '"psutil>=5.9", "no-such-dist-xyz>=1",')
    pyproject.write_text(text)
    lock.write_text(render_lock(dict(pins, **{"no-such-dist-xyz": "1.0"})))
    assert [str(m) for m in check_lock(lock, pyproject)] == [
        "no-such-dist-xyz==1.0 is locked and required but not installed"]


def test_a_malformed_lock_line_names_the_line_and_the_fix(tmp_path):
    lock = tmp_path / "requirements.lock"
    lock.write_text("# header\ntorch>=2\n")
    with pytest.raises(ValueError, match=r"requirements.lock:2: expected `name==version`.*tools/lock.py write"):
        read_lock(lock)
    with pytest.raises(FileNotFoundError, match="tools/lock.py write"):
        read_lock(tmp_path / "absent.lock")


def test_manifest_lock_facts_hash_the_file_and_say_whether_it_matches(tmp_path):
    facts = lock_facts()
    assert facts["sha256"] == hashlib.sha256(LOCK_PATH.read_bytes()).hexdigest()
    assert facts["matches"] is True and facts["mismatches"] == []
    stale = tmp_path / "requirements.lock"
    stale.write_text(render_lock(dict(current_pins(), torch="2.0.0")))
    facts = lock_facts(stale)
    assert facts["matches"] is False and facts["mismatches"] == [f"torch: locked 2.0.0, installed {metadata.version('torch')}"]
    assert lock_facts(tmp_path / "absent.lock") == {"file": str(tmp_path / "absent.lock"), "sha256": None,
                                                   "matches": None}


def test_lock_tool_check_exits_nonzero_on_a_mismatch(tmp_path):
    stale = tmp_path / "requirements.lock"
    stale.write_text(render_lock(dict(current_pins(), pyyaml="1.0")))
    ok = subprocess.run([sys.executable, "tools/lock.py", "check"], cwd=ROOT, capture_output=True, text=True)
    assert ok.returncode == 0 and "matches" in ok.stdout
    bad = subprocess.run([sys.executable, "tools/lock.py", "check", "--lock", str(stale)], cwd=ROOT,
                         capture_output=True, text=True)
    assert bad.returncode == 1 and "pyyaml: locked 1.0" in bad.stdout and "tools/setup.sh" in bad.stdout
