#!/usr/bin/env bash
# Take a fresh Debian 12 machine (Python 3.11, root) to a working virtual environment at .venv/:
#   1. Debian packages for headless rendering: software Vulkan (Mesa 25 lavapipe from
#      bookworm-backports; SAPIEN refuses Debian 12's Mesa 22) for ManiSkill, EGL/OSMesa for MuJoCo.
#   2. .venv with the project and all its extras at the exact versions of requirements.lock (pip
#      constraints; tools/constraints.txt's looser pins too), torch first so it stays the pinned build
#      (CPU wheel here; PyPI's CUDA build of the same version where a GPU is present); then
#      `tools/lock.py check` confirms that what is installed matches the lock.
# Idempotent: a second run on a set-up machine only checks a stamp (a fingerprint of pyproject.toml,
# the lock, the constraints and this script) and returns in seconds; a changed lock reinstalls.
# Environment: PYTHON (interpreter, default python3), VLA_RL_EXTRAS (default "all"),
# VLA_RL_TORCH_INDEX (an extra pip index to take torch from, optional).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PYTHON="${PYTHON:-python3}"
EXTRAS="${VLA_RL_EXTRAS:-all}"
VENV="$ROOT/.venv"
STAMP="$VENV/.vla-rl-setup-stamp"
start=$(date +%s)
log() { printf '[setup] %s\n' "$*"; }

# ---- 1. system packages for headless rendering --------------------------------------------
APT_PKGS=(libvulkan1 libegl1 libgl1 libgles2 libosmesa6 libglvnd0)
need_apt=0
for p in "${APT_PKGS[@]}"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || need_apt=1; done
mesa_version=$(dpkg-query -W -f='${Version}' mesa-vulkan-drivers 2>/dev/null || true)
case "$mesa_version" in 2[5-9].*|[3-9][0-9].*) ;; *) need_apt=1 ;; esac
if [ "$need_apt" = 1 ]; then
  if [ "$(id -u)" != 0 ]; then
    log "rendering packages missing and not root: run this script as root once (or install: mesa-vulkan-drivers>=25 ${APT_PKGS[*]})"
    exit 1
  fi
  . /etc/os-release
  if [ "${VERSION_CODENAME:-}" = bookworm ] && ! grep -rqs "bookworm-backports" /etc/apt/sources.list /etc/apt/sources.list.d/; then
    log "adding Debian bookworm-backports (for Mesa 25's software Vulkan)"
    cat > /etc/apt/sources.list.d/bookworm-backports.sources <<'SRC'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
  fi
  log "installing rendering packages (apt)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  if [ "${VERSION_CODENAME:-}" = bookworm ]; then
    apt-get install -y -qq -t bookworm-backports mesa-vulkan-drivers >/dev/null
  else
    apt-get install -y -qq mesa-vulkan-drivers >/dev/null
  fi
  apt-get install -y -qq "${APT_PKGS[@]}" >/dev/null
fi

# ---- 2. virtual environment ----------------------------------------------------------------
has_gpu=0
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then has_gpu=1; fi
fingerprint=$(cat pyproject.toml requirements.lock tools/constraints.txt tools/setup.sh | sha256sum | cut -c1-16)
fingerprint="$fingerprint-extras:$EXTRAS-gpu:$has_gpu"
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$fingerprint" ] && "$VENV/bin/python" -c "import vla_rl, torch" 2>/dev/null; then
  log "environment up to date ($(( $(date +%s) - start )) s): $VENV"
  exit 0
fi
"$PYTHON" - <<'PY' || { log "Python >= 3.11 needed (set PYTHON=/path/to/python3.11)"; exit 1; }
import sys
sys.exit(0 if sys.version_info >= (3, 11) else 1)
PY
[ -x "$VENV/bin/python" ] || { log "creating $VENV"; "$PYTHON" -m venv "$VENV"; }
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check)
"${PIP[@]}" install -q --upgrade pip
PINS=(-c requirements.lock -c tools/constraints.txt)
TORCH_ARGS=()
[ -n "${VLA_RL_TORCH_INDEX:-}" ] && TORCH_ARGS=(--extra-index-url "$VLA_RL_TORCH_INDEX")
if [ "$has_gpu" = 1 ]; then log "GPU found: torch from the CUDA build of the pinned version"; else log "no GPU: CPU torch"; fi
log "installing torch (pinned by requirements.lock)"
"${PIP[@]}" install -q "${PINS[@]}" "${TORCH_ARGS[@]}" torch
log "installing vla-rl[$EXTRAS] (editable) at the locked versions"
"${PIP[@]}" install -q "${PINS[@]}" "${TORCH_ARGS[@]}" -e ".[$EXTRAS]"
"$VENV/bin/python" - <<'PY'
import torch
cuda = torch.cuda.is_available()
print(f"[setup] torch {torch.__version__}, CUDA available: {cuda}")
PY
if [ "$EXTRAS" = all ]; then
  "$VENV/bin/python" tools/lock.py check || { log "installed versions differ from requirements.lock (above)"; exit 1; }
fi
echo "$fingerprint" > "$STAMP"
log "done in $(( $(date +%s) - start )) s; venv size $(du -sh "$VENV" | cut -f1)"
