"""The `rewardlab` command: one thin module per command group; each command parses, calls the library, prints."""

from __future__ import annotations

import typer

from rewardlab.cli import agreement as agreement_module
from rewardlab.cli import annotate, best_of_n, catalog, demo_reward, experiment, generate, pipeline, policy, prompt_opt
from rewardlab.cli import audit as audit_module
from rewardlab.cli import credit as credit_module
from rewardlab.cli import judge as judge_module
from rewardlab.cli import serve as serve_module
from rewardlab.cli import simulate as simulate_module
from rewardlab.cli import spans as spans_module
from rewardlab.cli import split as split_module
from rewardlab.cli import steps as steps_module

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__,
                  context_settings={"help_option_names": ["--help", "-h"]})

for command in (pipeline.quickstart, pipeline.train, pipeline.evaluate, pipeline.score, pipeline.embed,
                catalog.encoders, catalog.datasets, catalog.heads):
    app.command()(command)
app.command("bon-eval")(best_of_n.bon_eval)
app.command("select")(best_of_n.select)
app.command("bon")(best_of_n.bon)
app.command("simulate")(simulate_module.simulate)
app.command("serve")(serve_module.serve)
app.command("agreement")(agreement_module.agreement)
app.command("judge")(judge_module.judge)
app.command("audit")(audit_module.audit)
app.command("split")(split_module.split)
app.command("credit")(credit_module.credit)
experiment.experiment_app.command("bon-noise")(experiment.bon_noise)
experiment.experiment_app.command("demo-reward")(experiment.demo_reward)
app.add_typer(experiment.experiment_app, name="experiment")
app.add_typer(prompt_opt.prompt_opt_app, name="prompt-opt")
app.add_typer(annotate.annotate_app, name="annotate")
app.add_typer(generate.generate_app, name="generate")
app.add_typer(demo_reward.demo_reward_app, name="demo-reward")
app.add_typer(policy.policy_app, name="policy")
app.add_typer(steps_module.steps_app, name="steps")
app.add_typer(spans_module.spans_app, name="spans")

__all__ = ["app"]
