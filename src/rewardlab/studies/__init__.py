"""Reproducible studies built on the library, each one command that writes a report (`rewardlab experiment ...`,
`rewardlab prompt-opt table`): bon-noise, the Prompt-OIRL table, demonstration rewards vs Bradley-Terry.

**The rule: no library module imports a study.** Only `rewardlab.cli.experiment` and `rewardlab.cli.prompt_opt`
may, and only inside the commands that run one, so `import rewardlab` (or any other command) never loads them.
A study needs nothing the library keeps for it: what a study found generic moved into the library
(e.g. `rewardlab.optimize.prompt_opt.embed_logs`), and every report renders through `rewardlab.report`.
tests/studies/test_boundary.py enforces the rule over every module's imports.

**Why a subpackage and not a top-level ``studies/`` folder beside ``src/``** (DESIGN.md allows either):
the README documents these commands for everyone who ran ``pip install rewardlab``, not only for a checkout.
A top-level package would either stay out of the wheel (the commands break for installed users) or ship as
a second top-level package named ``studies`` in site-packages (a name that collides with anything). Inside
the package, the boundary is the same one, kept by a test instead of by the file system. The cost is small:
the studies add no dependency the library does not already have.
"""
