"""Diagnostic: can a recipe's RL fit the seeds it trains on? (`vla-rl train` on a fixed seed set.)

Runs `vla-rl train RECIPE k=v ...` with one change: before every rollout the reset cursor goes back
to `env.seed`, so each iteration replays the same reset ids, and the evaluations run on those
same ids (`runner.eval_seed=env.seed`, `runner.eval_episodes` = the number of ids per iteration).
A recipe whose training-rollout success does not climb here has an optimisation problem (see
docs/learning.md, experiment 11: `token_mean` diverged, `traj_equal` fitted 8 seeds 2/8 -> 6/8);
one that climbs here but not on fresh seeds has a generalisation problem.

Group recipes (GRPO/RLOO, `env.auto_reset=false`) replay num_envs / group_size ids; continuing
recipes (PPO) restart their window each iteration from env.seed. Example:

    .venv/bin/python tools/rl_fit_check.py quickstart runner.iterations=20 \
        model.pretrained=runs/quickstart/sft/policy warmstart.enabled=false
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv: list[str]) -> int:
    from vla_rl.cli.commands import split_recipe_args
    from vla_rl.cli.main import main as cli_main
    from vla_rl.config.loader import load_config
    from vla_rl.runner.loop import Runner

    recipe, overrides = split_recipe_args([a for a in argv if not a.startswith("-")])
    config = load_config(recipe, overrides)
    ids = config.env.num_envs // config.algorithm.group_size if config.algorithm.uses_groups else config.env.num_envs
    first = config.env.seed

    collect = Runner.collect

    def collect_from_fixed_seeds(self, buffer, obs):
        self.env.set_reset_cursor(first)
        if self.config.env.auto_reset:  # a continuing window restarts on the same ids
            obs = self.env.reset([first + i for i in range(self.env.num_envs)])
        return collect(self, buffer, obs)

    Runner.collect = collect_from_fixed_seeds
    extra = [f"runner.eval_seed={first}", f"runner.eval_episodes={ids}", "runner.name=fit_check"]
    print(f"rl_fit_check: training and evaluating on reset ids {first}..{first + ids - 1}", flush=True)
    return cli_main(["train", *argv, *extra])


if __name__ == "__main__":  # env workers are spawned: keep the patch under this guard
    sys.exit(main(sys.argv[1:]))
