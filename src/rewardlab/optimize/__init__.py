"""Using a reward: selection among candidates (best-of-n, soft best-of-n, conservative ensembles)."""
