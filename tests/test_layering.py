"""Imports flow down (DESIGN.md): no part imports a higher one, and no modules import each other in a cycle."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("import_graph", ROOT / "tools" / "import_graph.py")
import_graph = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(import_graph)


def test_the_project_imports_only_downward_and_without_cycles():
    graph = import_graph.module_imports(ROOT)
    assert import_graph.upward_imports(graph) == []
    assert import_graph.cycles(graph) == []


def test_the_checker_finds_an_upward_import_and_a_deferred_cycle(tmp_path):
    files = {
        "vla_rl/__init__.py": "",
        "vla_rl/runner/__init__.py": "",
        "vla_rl/runner/loop.py": "from vla_rl.runner.hooks import ranks\n",
        "vla_rl/runner/hooks.py": "def ranks():\n    from vla_rl.runner.loop import seed  # dodges the cycle at import time\n",
        "vla_rl/eval/__init__.py": "",
        "vla_rl/eval/report.py": "from vla_rl.runner.loop import x\n",
        "placement/__init__.py": "",
        "simulators/__init__.py": "",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    graph = import_graph.module_imports(tmp_path)
    assert import_graph.upward_imports(graph) == [("vla_rl.eval.report", "vla_rl.runner.loop")]
    assert import_graph.cycles(graph) == [["vla_rl.runner.hooks", "vla_rl.runner.loop"]]
    assert import_graph.main(["--root", str(tmp_path)]) == 1
