"""What a benchmark evaluation writes and prints from its episode records.

    results.json   the per-episode records (reset id, task, init state, success, return, length; the
                   layout `vla-rl compare` and reports read) and "benchmark": the protocol's signature,
                   one row per task (successes, episodes, rate, Wilson 95%), the suite mean (the mean of
                   the task rates, the figure papers report) or, for a partial protocol, only
                   "partial_mean" beside `suite_mean: null` and the reasons it is partial
    manifest.json  provenance: versions, renderer, image protocol, decoding, hashes, env settings
    report.md/html the per-task table and episode-length histogram (`vla_rl.eval.report`)

`print_summary` shows the same table on the console.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any, Sequence

from vla_rl.eval.benchmark_protocol import BenchmarkProtocol
from vla_rl.eval.stats import wilson_interval


def task_table(protocol: BenchmarkProtocol, records: dict[int, dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per evaluated task: name, successes, episodes, rate, Wilson 95% interval."""
    rows = []
    for t in protocol.tasks:
        outcomes = [r["success"] for r in records.values() if r["task"] == t]
        k, n = int(sum(outcomes)), len(outcomes)
        low, high = wilson_interval(k, n)
        rows.append({"task_index": t, "task": protocol.task_names[t], "successes": k, "episodes": n,
                     "rate": k / n if n else None, "wilson95": [low, high]})
    return rows


def summary(protocol: BenchmarkProtocol, records: dict[int, dict[str, Any]]) -> dict[str, Any]:
    """The "benchmark" section of results.json."""
    rows = task_table(protocol, records)
    rates = [row["rate"] for row in rows if row["rate"] is not None]
    complete = len(records) == len(protocol.reset_ids()) and not protocol.partial
    mean = sum(rates) / len(rates) if rates else None
    k = sum(int(r["success"]) for r in records.values())
    low, high = wilson_interval(k, len(records))
    return {"suite": protocol.suite, "complete": complete, "partial": protocol.partial,
            "partial_reasons": protocol.deviations(), "episodes": len(records),
            "episodes_expected": len(protocol.reset_ids()),
            "suite_mean": mean if complete else None, "partial_mean": None if complete else mean,
            "pooled": {"successes": k, "episodes": len(records), "wilson95": [low, high]},
            "tasks": rows, "signature": protocol.signature()}


def results_record(protocol: BenchmarkProtocol, records: dict[int, dict[str, Any]], seconds: float) -> dict[str, Any]:
    episodes = [records[r] for r in sorted(records)]
    return {"task": f"libero/{protocol.suite}", "iteration": -1, "env_steps": sum(e["length"] for e in episodes),
            "decoding": protocol.decoding, "temperature": protocol.temperature,
            "success_rate": sum(e["success"] for e in episodes) / max(len(episodes), 1),
            "benchmark": summary(protocol, records), "episodes": episodes, "seconds": seconds}


def benchmark_manifest(protocol: BenchmarkProtocol, settings: Any, policy_dir: Path, run_config: Path | None,
                       shards: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Provenance of one benchmark evaluation (plain JSON-able dict)."""
    from vla_rl.config.core import to_dict
    from vla_rl.eval.manifest import package_versions, renderer_facts, sha256_file, sha256_text, sha256_tree

    ids = protocol.reset_ids()
    signature = json.dumps(protocol.signature(), sort_keys=True)
    return {
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "command": " ".join(sys.argv),
        "task": f"libero/{protocol.suite}",
        "protocol": {"name": "benchmark-partial" if protocol.partial else "benchmark",
                     "description": protocol.describe(), "episodes": len(ids), "signature_sha256": sha256_text(signature)},
        "reset_ids": ids,
        "init_states": [{"reset_id": r, "task": protocol.task_of(r), "init_state": protocol.state_of(r)} for r in ids],
        "task_names": list(protocol.task_names),
        "decoding": {"mode": protocol.decoding, "temperature": protocol.temperature},
        "image_protocol": protocol.image_protocol,
        "checkpoint": {"path": str(policy_dir.resolve()), "policy_sha256": sha256_tree(policy_dir),
                       **({"config_sha256": sha256_file(run_config)} if run_config else {})},
        "env": to_dict(settings.env),
        "packages": package_versions(),
        "renderer": renderer_facts("libero"),
        "shards": list(shards),
    }


def print_summary(console: Any, protocol: BenchmarkProtocol, record: dict[str, Any], out_dir: Path) -> None:
    """The per-task table, then the suite mean (or the PARTIAL mean) and where the outputs went."""
    from rich.table import Table

    bench = record["benchmark"]
    table = Table(title=f"{protocol.suite}" + (" (PARTIAL)" if protocol.partial else ""), title_justify="left")
    for column in ("task", "success", "Wilson 95%", "episodes"):
        table.add_column(column, justify="left" if column == "task" else "right")
    for row in bench["tasks"]:
        lo, hi = row["wilson95"]
        rate = "n/a" if row["rate"] is None else f"{100 * row['rate']:.1f}%"
        table.add_row(row["task"], rate, f"[{100 * lo:.1f}, {100 * hi:.1f}]", f"{row['successes']}/{row['episodes']}")
    console.print(table)
    pooled = bench["pooled"]
    lo, hi = pooled["wilson95"]
    if bench["complete"]:
        head = f"[bold]{protocol.suite} suite mean {100 * bench['suite_mean']:.1f}%[/bold]"
    else:
        mean = bench["partial_mean"]
        head = (f"[bold yellow]PARTIAL[/bold yellow] ({'; '.join(bench['partial_reasons']) or 'episodes missing'}): mean "
                f"{'n/a' if mean is None else f'{100 * mean:.1f}%'} over {bench['episodes']} of {bench['episodes_expected']} "
                "episodes, not the benchmark figure")
    console.print(f"{head} (pooled {pooled['successes']}/{pooled['episodes']}, Wilson 95% [{100 * lo:.1f}, "
                  f"{100 * hi:.1f}]); results: {out_dir / 'results.json'}, report: {out_dir / 'report.md'}")


def write_outputs(out_dir: Path, protocol: BenchmarkProtocol, records: dict[int, dict[str, Any]], settings: Any,
                  policy_dir: Path, run_config: Path | None, shards: Sequence[dict[str, Any]],
                  seconds: float) -> dict[str, Any]:
    """results.json, manifest.json and the report in `out_dir`; returns the results record."""
    from vla_rl.checkpoints import write_text_atomic
    from vla_rl.eval.report import write_report

    record = results_record(protocol, records, seconds)
    manifest = benchmark_manifest(protocol, settings, policy_dir, run_config, shards)
    write_text_atomic(out_dir / "results.json", json.dumps(record, indent=2) + "\n")
    write_text_atomic(out_dir / "manifest.json", json.dumps(manifest, indent=2) + "\n")
    notes = [] if record["benchmark"]["complete"] else [
        f"**PARTIAL protocol** ({'; '.join(record['benchmark']['partial_reasons']) or 'episodes missing'}): "
        "these rates are not the benchmark figure."]
    write_report(out_dir, record, manifest, title=f"Benchmark: {protocol.suite}", notes=notes)
    return record


__all__ = ["benchmark_manifest", "print_summary", "results_record", "summary", "task_table", "write_outputs"]
