"""tools/bench_recipes.py: the side-by-side policy cost of two recipes, run for real at a reduced env count."""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools"))

import pytest  # noqa: E402

from bench_recipes import main  # noqa: E402


@pytest.mark.slow
def test_bench_recipes_times_the_cnn_and_the_oft_quickstarts(tmp_path, monkeypatch, capsys):
    out = tmp_path / "bench.json"
    small = "env.num_envs=4,algorithm.group_size=4,rollout.steps_per_iteration=4,algorithm.num_minibatches=2"
    monkeypatch.setattr(sys, "argv", ["bench_recipes.py", f"quickstart:{small}", f"quickstart_vla:{small}",
                                      "--repeats", "1", "--out", str(out)])
    main()
    rows = json.loads(out.read_text())["rows"]
    assert [(r["recipe"], r["family"], r["chunk"]) for r in rows] == [("quickstart", "cnn", 1),
                                                                      ("quickstart_vla", "openvla_oft", 2)]
    for r, epochs, train_threads in zip(rows, (4, 2), (1, 2)):  # the recipes' update_epochs and train threads
        assert r["num_envs"] == 4 and r["minibatch"] == 8  # 4 envs x 4 steps / 2 minibatches
        assert r["act_s"] > 0 and r["train_step_s"] > 0
        assert abs(r["actions_per_s"] - 4 * r["chunk"] / r["act_s"]) < 1e-6 * r["actions_per_s"]
        assert r["update_steps_per_iteration"] == epochs * 2  # update_epochs x num_minibatches
        assert (r["torch_threads"], r["train_threads"]) == (1, train_threads)
    table = capsys.readouterr().out
    assert "quickstart_vla" in table and "openvla_oft/micro" in table and f"wrote {out}" in table
