"""HTTP serving helpers shared by rewardlab's services (request limits for the annotation and generation servers)."""
