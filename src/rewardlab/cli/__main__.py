"""`python -m rewardlab.cli`: the same command as `rewardlab`."""

from rewardlab.cli import app

app()
