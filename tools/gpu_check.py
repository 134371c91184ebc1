"""The GPU check of issue 21: six measurements, each in its own process under its own timeout, one table
and one JSON file. Run it through tools/gpu_check.sh (which picks the Python and counts the setup).

    tools/gpu_check.sh                 # on a CUDA machine: ~8 min at published size (7B, bf16)
    tools/gpu_check.sh --dry-run       # list the steps, run nothing
    tools/gpu_check.sh --cpu-smoke     # every part at tiny size on the CPU (CI's rehearsal)
    tools/gpu_check.sh --parts a,c --out gpu_check.json

Parts (tools/gpu_parts/*.py, each `run(setting) -> {"rows": [...], ...}`):
  a  decode  7B OpenVLA decode per token step at batch 1, 8, 64 vs the bandwidth floor; ours / generate
  b  oft     OFT-7B chunk decode, actions/s
  c  update  one PPO and one GRPO update at 7B with LoRA: time and peak memory vs the memory plan
  d  sim     ManiSkill GPU PushCube RGB 128 px, 256 and 1024 envs: env steps/s, ours / raw loop
  e  hybrid  pipelined vs sequential rollout with GPU simulation, tiny and 7B, vs the ideal bound
  f  sync    weight sync of the LoRA trainables

A part that cannot run (no CUDA, ManiSkill missing, its timeout, an error) is reported as
`skipped: <reason>` and the others still run. Part outputs (logs) go beside the JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

TOOLS = Path(__file__).resolve().parent
ROOT = TOOLS.parent
GPU_BUDGET_S = 480
"""The parts' share of the 8 minutes on one H100/H200 (setup is counted and shown apart)."""


@dataclass(frozen=True)
class Part:
    key: str
    module: str
    what: str
    gpu: str
    """What it runs at published size."""
    smoke: str
    """What it runs in the CPU smoke."""
    timeout_gpu: int
    timeout_smoke: int


PARTS = (
    Part("a", "decode", "OpenVLA decode per token step vs the bandwidth floor; ours / generate",
         "7b bf16, batch 1, 8, 64; 2 GiB copy kernel", "tiny fp32, batch 1, 2; 64 MiB copy", 75, 240),
    Part("b", "oft", "OFT chunk decode, actions/s",
         "OFT-7b bf16 (main + wrist, proprio, chunk 8), batch 1, 8, 64", "tiny OFT, chunk 2, batch 1, 2", 50, 240),
    Part("c", "update", "one PPO and one GRPO update with LoRA: time, peak memory vs the plan",
         "7b bf16 LoRA r32 + checkpointing, 16 envs x 4 steps, minibatch 32", "tiny, 4 envs x 2 steps", 110, 300),
    Part("d", "sim", "ManiSkill PushCube RGB env steps/s: ours / raw ManiSkill loop",
         "physx_cuda, 128 px, 256 and 1024 envs, 20 steps", "physx_cpu, 64 px, 1 env, 3 steps", 85, 300),
    Part("e", "hybrid", "pipelined vs sequential rollout (2 GPU scenes) vs the ideal bound",
         "tiny (256 envs x 8 steps) and 7b (64 envs x 4 steps)", "tiny, 2 envs x 2 steps", 105, 300),
    Part("f", "sync", "weight sync of the LoRA trainables actor -> rollout",
         "7b LoRA r32 + value head, 2 copies on the GPU", "tiny", 40, 240),
)
BY_KEY = {p.key: p for p in PARTS}
NO_CUDA = "no CUDA device (tools/gpu_check.sh --cpu-smoke rehearses every part on the CPU)"


# ------------------------------------------------------------------------------------------ one part


def run_part(key: str, result_path: str, smoke: bool) -> int:
    """Child process: run one part, write {"status": ..., ...} to `result_path`."""
    sys.path.insert(0, str(TOOLS))
    sys.path.insert(0, str(ROOT))
    out: dict[str, Any]
    try:
        import importlib

        import torch

        from gpu_parts.common import Setting, Skip

        torch.manual_seed(0)
        if not smoke and not torch.cuda.is_available():
            raise Skip(NO_CUDA)
        setting = Setting.cpu_smoke() if smoke else Setting.gpu()
        if smoke:  # one thread: on a busy 2-core machine two threads made a tiny act() 10-100x slower
            torch.set_num_threads(1)
        out = {"status": "ok", **importlib.import_module(f"gpu_parts.{BY_KEY[key].module}").run(setting)}
    except Exception as e:  # noqa: BLE001 - reported as a skipped part; the traceback goes to its log
        if type(e).__name__ == "Skip":  # gpu_parts.common.Skip (by name: the import itself may have failed)
            out = {"status": "skipped", "reason": str(e)}
        else:
            traceback.print_exc()
            out = {"status": "failed", "reason": f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"[:300]}
    write_json(result_path, out)
    return 0


# ------------------------------------------------------------------------------------------ the driver


def write_json(path: str | os.PathLike, data: Any) -> None:
    """Atomically (temp file in the same folder, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=2, default=str)
    os.replace(tmp, path)


def log(msg: str) -> None:
    print(f"[gpu_check] {msg}", flush=True)


def spawn(part: Part, smoke: bool, timeout: float, log_path: Path) -> dict[str, Any]:
    """Run `part` in a child process under `timeout`; its output goes to `log_path`."""
    with tempfile.TemporaryDirectory() as tmp:
        result = Path(tmp) / "result.json"
        cmd = [sys.executable, str(Path(__file__).resolve()), "--run-part", part.key, "--result", str(result)]
        cmd += ["--cpu-smoke"] if smoke else []
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
        with open(log_path, "w") as logf:
            proc = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT, env=env, cwd=ROOT, start_new_session=True)
            try:
                code = proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                return {"status": "timeout", "reason": f"timed out after {timeout:.0f} s (log: {log_path.name})"}
        if result.exists():
            return json.loads(result.read_text())
        tail = [line for line in log_path.read_text(errors="replace").splitlines() if line.strip()][-1:]
        return {"status": "failed", "reason": f"exit code {code}, no result: {tail[0][:200] if tail else 'no output'}"}


def machine() -> dict[str, Any]:
    import torch

    info: dict[str, Any] = {"python": platform.python_version(), "torch": torch.__version__,
                            "cuda_available": torch.cuda.is_available(), "cpus": os.cpu_count(),
                            "host": platform.node()}
    for dist in ("transformers", "peft", "mani-skill", "sapien"):  # versions without importing them (slow)
        try:
            info[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            info[dist] = None
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        info.update(gpu=props.name, gpu_memory_bytes=props.total_memory, cuda=torch.version.cuda)
    return info


def print_table(results: dict[str, dict[str, Any]]) -> None:
    lines = [("part", "measurement", "value", "compare")]
    for part in PARTS:
        if part.key not in results:
            continue
        r = results[part.key]
        if r["status"] == "ok":
            for i, row in enumerate(r["rows"]):
                lines.append((f"({part.key})" if i == 0 else "", row["item"], row["value"], row["compare"]))
        else:
            lines.append((f"({part.key})", part.what, f"skipped: {r['reason']}", ""))
    widths = [max(len(line[i]) for line in lines) for i in range(3)]
    for j, line in enumerate(lines):
        print("  ".join(cell.ljust(w) for cell, w in zip(line[:3], widths)) + "  " + line[3])
        if j == 0:
            print("  ".join("-" * w for w in widths) + "  " + "-" * 7)


def dry_run(keys: list[str], smoke: bool, out: Path, budget: float) -> None:
    print(f"tools/gpu_check.sh{' --cpu-smoke' if smoke else ''}: {len(keys)} parts, each in its own process "
          f"under its own timeout ({'no overall budget' if smoke else f'{budget:.0f} s for all parts'})")
    print("  setup  tools/gpu_check.sh: tools/setup.sh where the package index is reachable, else the machine's "
          "python3 (+ wheels carried in .whl/); counted and shown apart")
    for k in keys:
        p = BY_KEY[k]
        print(f"  ({p.key})    {p.module:<7} {p.what}")
        print(f"         {'CPU smoke' if smoke else 'GPU'}: {p.smoke if smoke else p.gpu}; timeout "
              f"{p.timeout_smoke if smoke else p.timeout_gpu} s")
    print(f"  table  printed last; JSON -> {out}; part logs -> {out.parent / (out.stem + '_logs')}/")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("--dry-run", action="store_true", help="list the steps and exit")
    ap.add_argument("--cpu-smoke", action="store_true", help="every part at tiny size on the CPU")
    ap.add_argument("--parts", default=",".join(p.key for p in PARTS), help="comma-separated part letters (a-f)")
    ap.add_argument("--out", default="gpu_check.json", help="where to write the JSON")
    ap.add_argument("--budget", type=float, default=None,
                    help=f"seconds for all parts (default {GPU_BUDGET_S} on the GPU, none in the CPU smoke)")
    ap.add_argument("--setup-seconds", type=float, default=0.0, help=argparse.SUPPRESS)
    ap.add_argument("--python-source", default="this interpreter", help=argparse.SUPPRESS)
    ap.add_argument("--run-part", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--result", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.run_part:
        return run_part(args.run_part, args.result, args.cpu_smoke)
    keys = [k.strip() for k in args.parts.split(",") if k.strip()]
    unknown = [k for k in keys if k not in BY_KEY]
    if unknown or not keys:
        ap.error(f"--parts {args.parts!r}: unknown part(s) {unknown}; choose among {', '.join(BY_KEY)}")
    out = Path(args.out)
    budget = args.budget if args.budget is not None else (float("inf") if args.cpu_smoke else GPU_BUDGET_S)
    if args.dry_run:
        dry_run(keys, args.cpu_smoke, out, budget)
        return 0
    logs = out.parent / f"{out.stem}_logs"
    logs.mkdir(parents=True, exist_ok=True)
    info = machine()
    log(f"{'CPU smoke' if args.cpu_smoke else 'GPU check'} on {info.get('gpu', 'CPU')}: python {info['python']} "
        f"({args.python_source}), torch {info['torch']}, transformers {info['transformers']}; setup took "
        f"{args.setup_seconds:.0f} s")
    start = time.perf_counter()
    results: dict[str, dict[str, Any]] = {}
    for i, key in enumerate(keys):
        part = BY_KEY[key]
        left = budget - (time.perf_counter() - start)
        timeout = min(part.timeout_smoke if args.cpu_smoke else part.timeout_gpu, left)
        if not args.cpu_smoke and not info["cuda_available"]:
            results[key] = {"status": "skipped", "reason": NO_CUDA, "seconds": 0}
            continue
        if timeout < 10:
            results[key] = {"status": "skipped", "reason": f"the {budget:.0f} s budget of the parts is spent", "seconds": 0}
            continue
        log(f"[{i + 1}/{len(keys)}] ({key}) {part.what} (timeout {timeout:.0f} s)")
        t0 = time.perf_counter()
        r = spawn(part, args.cpu_smoke, timeout, logs / f"{key}_{part.module}.log")
        r["seconds"] = time.perf_counter() - t0
        results[key] = r
        log(f"      ({key}) {r['status']} in {r['seconds']:.1f} s" + ("" if r["status"] == "ok" else f": {r['reason']}"))
    total = time.perf_counter() - start
    write_json(out, {"mode": "cpu_smoke" if args.cpu_smoke else "gpu", "machine": info,
                     "python_source": args.python_source, "setup_seconds": args.setup_seconds,
                     "parts_seconds": total, "budget_seconds": None if budget == float("inf") else budget,
                     "parts": {k: {"what": BY_KEY[k].what, **v} for k, v in results.items()}})
    print()
    print_table(results)
    ok = sum(r["status"] == "ok" for r in results.values())
    print(f"\n{ok}/{len(results)} parts ran, {len(results) - ok} skipped; parts {total:.0f} s + setup "
          f"{args.setup_seconds:.0f} s; JSON: {out}; logs: {logs}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
