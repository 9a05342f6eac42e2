"""rewardlab: learn reward models from human feedback on cached embeddings, evaluate them honestly."""

__version__ = "0.1.0"
