"""`vla-rl report PATH`: (re)write the report of a run folder or of an evaluation folder.

PATH is a run folder (`runs/<name>`: learning curve from logs/metrics.jsonl, SFT loss from
sft/logs when the run had a warm start, and the initial-vs-final comparison when eval/initial and
eval/final exist) or an evaluation folder holding results.json and manifest.json. The report is
written beside what it reads unless `--out` says otherwise: report.md, report.html and the PNGs.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from vla_rl.cli.commands import COMMANDS, Command, run_command


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", help="run folder or evaluation folder (results.json + manifest.json)")
    parser.add_argument("--out", default=None, help="output folder (default: <run>/eval or the evaluation folder)")
    parser.add_argument("--title", default=None, help="report title")


def run(args: argparse.Namespace) -> int:
    from vla_rl.eval.compare import compare_records
    from vla_rl.eval.report import plot_learning_curve, run_logs, write_report

    path = Path(args.path)
    if (path / "results.json").is_file():
        record = json.loads((path / "results.json").read_text())
        manifest_path = path / "manifest.json"
        manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else None
        checkpoint = ((manifest or {}).get("checkpoint") or {}).get("path")
        rl_rows, sft_rows = run_logs(checkpoint) if checkpoint else ([], [])
        out = write_report(args.out or path, record, manifest, rl_rows, sft_rows, title=args.title)
        print(f"report: {out}")
        return 0
    if not (path / "logs").is_dir():
        print(f"vla-rl report: {path} is neither a run folder (with logs/) nor an evaluation folder (with results.json)",
              file=sys.stderr)
        return 2
    rl_rows, sft_rows = run_logs(path)
    out = Path(args.out) if args.out else path / "eval"
    final, initial = out / "final" / "results.json", out / "initial" / "results.json"
    if not final.is_file():
        out.mkdir(parents=True, exist_ok=True)
        curve = plot_learning_curve(rl_rows, out / "learning_curve.png", sft_rows=sft_rows)
        print(f"learning curve: {curve}" if curve else f"vla-rl report: nothing to plot in {path / 'logs'}")
        return 0 if curve else 1
    final_record = json.loads(final.read_text())
    comparison = None
    if initial.is_file():
        comparison = compare_records(json.loads(initial.read_text()), final_record, "before RL", "after RL")
    manifest_path = out / "final" / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else None
    report = write_report(out, final_record, manifest, rl_rows, sft_rows, comparison, title=args.title)
    print(f"report: {report}")
    return 0


COMMANDS.register("report")(Command(help="write the report (success with Wilson intervals, curves) of a run or eval",
                                    add_arguments=add_arguments, run=run))


def main(argv: list[str] | None = None) -> int:
    """`python -m vla_rl.cli.report ...`: the same as `vla-rl report ...`."""
    return run_command("report", argv)


if __name__ == "__main__":
    sys.exit(main())
