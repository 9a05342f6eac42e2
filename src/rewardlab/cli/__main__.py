"""`python -m rewardlab.cli`: the same command as `rewardlab`."""

from rewardlab.cli import app

if __name__ == "__main__":  # worker processes (spawned, e.g. cross-validation's fold workers) import this module too
    app()
