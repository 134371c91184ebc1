#!/usr/bin/env bash
# The GPU check of issue 21 in one command: picks a Python, counts the setup, then tools/gpu_check.py runs
# the six parts (each in its own process under its own timeout), prints one table and writes JSON.
#
#   tools/gpu_check.sh [--out gpu_check.json] [--parts a,b,...]   # on a CUDA machine, ~8 min
#   tools/gpu_check.sh --dry-run                                   # list the steps, run nothing
#   tools/gpu_check.sh --cpu-smoke                                 # every part at tiny size on the CPU
#
# Which Python:
#   1. $VLA_RL_PYTHON when set (no setup; CI and tests pass their interpreter);
#   2. else, where the package index answers: tools/setup.sh (idempotent: seconds when .venv is current),
#      then .venv/bin/python;
#   3. else (a machine with no network, e.g. a lent GPU machine whose image has torch, transformers and peft):
#      python3 from PATH, with any wheels carried in .whl/ installed to a temporary folder first
#      (docs/placement.md, "GPU check": what to carry). Parts whose packages are missing print `skipped:`.
# --dry-run never runs the setup. The setup's seconds are shown apart from the parts' 8-minute budget.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
start=$(date +%s)
say() { printf '[gpu_check] %s\n' "$*"; }

mode=run
for a in "$@"; do
  case "$a" in
    --dry-run|-h|--help) mode=dry ;;
  esac
done

source_note=""
if [ -n "${VLA_RL_PYTHON:-}" ]; then
  PY="$VLA_RL_PYTHON"; source_note="VLA_RL_PYTHON"
elif [ "$mode" = dry ]; then
  if [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY=python3; fi
  source_note="no setup (dry run)"
else
  base="${PYTHON:-python3}"
  if timeout 8 "$base" -c "import urllib.request as u; u.urlopen('https://pypi.org/simple/pip/', timeout=6)" >/dev/null 2>&1; then
    say "package index reachable: tools/setup.sh"
    if bash tools/setup.sh; then
      PY=.venv/bin/python; source_note="tools/setup.sh"
    else
      say "tools/setup.sh failed (above); falling back to $base"
      PY="$base"; source_note="$base (tools/setup.sh failed)"
    fi
  elif [ -x .venv/bin/python ]; then
    PY=.venv/bin/python; source_note=".venv (package index unreachable: not refreshed)"
  else
    PY="$base"; source_note="$base (no network, no .venv)"
    if compgen -G ".whl/*.whl" >/dev/null; then
      site="${TMPDIR:-/tmp}/vla_rl_gpu_site"
      say "installing the wheels carried in .whl/ into $site"
      if "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$site" .whl/*.whl; then
        export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"; source_note="$source_note + .whl/"
      else
        say "installing .whl/ failed (above); parts that need those packages will be skipped"
      fi
    fi
  fi
fi
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
setup_s=$(( $(date +%s) - start ))
[ "$mode" = dry ] || say "python: $PY ($source_note), setup ${setup_s} s"
exec "$PY" tools/gpu_check.py "$@" --setup-seconds "$setup_s" --python-source "$source_note"
