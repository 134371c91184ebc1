"""Paired comparison of two evaluations on the same reset ids: McNemar's exact test.

Two policies evaluated on the same seeds (or LIBERO init states) give paired outcomes; only the
discordant pairs (one succeeds, the other fails) carry evidence about which is better, and under the
null hypothesis each discordant pair is a fair coin. `compare_records` pairs two results.json
records by reset id (they must cover the same ids) and reports both success rates with Wilson 95%
intervals, the discordant counts, the two-sided exact p-value and whether it is below `alpha`.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from vla_rl.eval.stats import mcnemar_exact, wilson_interval


@dataclass(frozen=True)
class PairedComparison:
    """B versus A on n paired episodes."""

    label_a: str
    label_b: str
    n: int
    successes_a: int
    successes_b: int
    only_a: int
    """Episodes A solved and B did not."""
    only_b: int
    """Episodes B solved and A did not."""
    p_value: float
    """Two-sided exact McNemar p-value."""
    alpha: float = 0.05

    @property
    def significant(self) -> bool:
        return self.p_value < self.alpha

    @property
    def rate_a(self) -> float:
        return self.successes_a / max(self.n, 1)

    @property
    def rate_b(self) -> float:
        return self.successes_b / max(self.n, 1)

    @property
    def difference(self) -> float:
        """Success rate of B minus A."""
        return self.rate_b - self.rate_a

    def interval(self, which: str) -> tuple[float, float]:
        return wilson_interval(self.successes_a if which == "a" else self.successes_b, self.n)

    def verdict(self) -> str:
        """One sentence: the difference, the test and what it means at `alpha`."""
        better = self.label_b if self.difference > 0 else self.label_a
        if self.difference == 0:
            head = f"{self.label_a} and {self.label_b} solve the same share of episodes"
        else:
            head = f"{better} is ahead by {100 * abs(self.difference):.1f} points"
        word = "significant" if self.significant else "not significant"
        return (f"{head}; McNemar exact p = {self.p_value:.3g} on {self.only_a + self.only_b} discordant of {self.n} "
                f"paired episodes: {word} at alpha = {self.alpha}")

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        lo_a, hi_a = self.interval("a")
        lo_b, hi_b = self.interval("b")
        out.update(rate_a=self.rate_a, rate_b=self.rate_b, difference=self.difference, significant=self.significant,
                   wilson95_a=[lo_a, hi_a], wilson95_b=[lo_b, hi_b], verdict=self.verdict())
        return out


def outcomes_by_id(record: dict[str, Any]) -> dict[int, bool]:
    """reset id -> success of a results.json record (refusing a record that ran an id twice)."""
    out: dict[int, bool] = {}
    for episode in record["episodes"]:
        rid = int(episode["reset_id"])
        if rid in out:
            raise ValueError(f"reset id {rid} appears twice in one evaluation; each episode must run exactly once")
        out[rid] = bool(episode["success"])
    return out


def check_same_protocol(a: dict[str, Any], b: dict[str, Any], label_a: str = "A", label_b: str = "B") -> None:
    """Refuse to pair benchmark evaluations (`vla-rl eval --benchmark`) run under different protocols."""
    sa, sb = (r.get("benchmark", {}).get("signature") for r in (a, b))
    if (sa is None) != (sb is None):
        raise ValueError(f"only {label_a if sa is not None else label_b} is a benchmark evaluation; compare two "
                         "`vla-rl eval --benchmark` records, or two evaluations of the run protocol")
    if sa is not None and sa != sb:
        keys = sorted(k for k in set(sa) | set(sb) if sa.get(k) != sb.get(k))
        shown = "; ".join(f"{k}: {sa.get(k)!r} vs {sb.get(k)!r}"[:120] for k in keys[:3])
        raise ValueError(f"{label_a} and {label_b} ran different benchmark protocols ({shown}); evaluate both with the "
                         "same settings (e.g. the same env.image_protocol and env.image_size overrides)")


def compare_records(a: dict[str, Any], b: dict[str, Any], label_a: str = "A", label_b: str = "B",
                    alpha: float = 0.05) -> PairedComparison:
    """McNemar comparison of two evaluation records over the same reset ids (and, for benchmark
    evaluations, the same protocol)."""
    check_same_protocol(a, b, label_a, label_b)
    oa, ob = outcomes_by_id(a), outcomes_by_id(b)
    if set(oa) != set(ob):
        only_a, only_b = sorted(set(oa) - set(ob))[:5], sorted(set(ob) - set(oa))[:5]
        raise ValueError(f"the two evaluations ran different reset ids (only in {label_a}: {only_a}, only in {label_b}: "
                         f"{only_b}); a paired test needs the same episodes: evaluate both with the same "
                         "runner.eval_seed and runner.eval_episodes")
    ids = sorted(oa)
    only_a = sum(oa[i] and not ob[i] for i in ids)
    only_b = sum(ob[i] and not oa[i] for i in ids)
    return PairedComparison(label_a=label_a, label_b=label_b, n=len(ids), successes_a=sum(oa.values()),
                            successes_b=sum(ob.values()), only_a=only_a, only_b=only_b,
                            p_value=mcnemar_exact(only_a, only_b), alpha=alpha)


def load_record(path: str | Path) -> dict[str, Any]:
    """A results.json record from its file, or from an eval folder holding results.json."""
    path = Path(path)
    if path.is_dir():
        path = path / "results.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is not an evaluation record (results.json written by `vla-rl eval`)")
    return json.loads(path.read_text())


__all__ = ["PairedComparison", "check_same_protocol", "compare_records", "load_record", "outcomes_by_id"]
