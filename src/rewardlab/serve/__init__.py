"""HTTP serving: the reward-model service (`rewardlab serve`: `reward_server`, micro-batching in `batching`, the
served model and its row cache in `scoring`, `metrics`, settings in `config`, a TRL reward function over it in
`client`) and the request limits every rewardlab service shares (`limits`)."""
