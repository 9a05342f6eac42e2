"""The recipe `train` and `quickstart` use unless told otherwise, and why.

Chosen by the rm-recipes study (``rewardlab experiment rm-recipes``, docs/rm-recipes/) with a rule written before
its results: the best mean length-balanced accuracy over cross-set transfers (train on one shipped set, test on
another), never the best score on one set. Its winner was the length-debiased BT-MLP on interaction features,
without augmentation. The margin over the plain BT-MLP is inside the noise of one transfer, but the debiased head
also lowers the reward–length correlation; the plain head stays one flag away (``--head bt-mlp``).

Kept apart from `rewards.heads` so the command line can read the defaults without importing torch.
"""

from __future__ import annotations

#: a registered head kind (`rewards.heads`): BT-MLP fitted as reward + a length term, scored without it
DEFAULT_HEAD = "bt-mlp-debiased"
#: the feature mode (`rewards.features`): prompt and response embedded apart, [r, p, r⊙p]
DEFAULT_FEATURES = "interaction"
