"""Which device a reward head fits and predicts on (``--device`` for heads), asked of any head the same way.

Heads that run on torch (`TorchHead`, `AnnotatorHead`, `MultiObjectiveHead`, and ensembles of them) say so with a
``fits_on_device`` attribute and take ``fit(..., device=...)`` and ``move_to(device)``; the others (LightGBM, the
mixture's EM in numpy) always run on the CPU, so callers that hold "some head" (a `RewardModel`, a cross-validation
fold) use `fit_head` and `move_head` instead of asking which kind they hold. A device is a ``torch.device`` or a
spec (``auto``, ``cpu``, ``cuda``, ``cuda:N``, resolved by `rewardlab.embed.devices.resolve_device`); None is the
CPU, and a CPU fit is exactly the fit without a device.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

    from rewardlab.rewards.base import FitProgress, RewardHead
    from rewardlab.rewards.training_set import TrainingSet


def fits_on_device(head: Any) -> bool:
    """Whether ``head`` fits and predicts on a device of its caller's choosing (torch heads); else the CPU."""
    return bool(getattr(head, "fits_on_device", False))


def fit_head(head: RewardHead, data: TrainingSet, on_progress: FitProgress | None = None,
             device: torch.device | str | None = None) -> RewardHead:
    """``head.fit(data, on_progress)``, on ``device`` when the head can fit there (the rest fit on the CPU). A spec
    is resolved first whatever the head, so a GPU that is not here is the same clear error for every head."""
    if isinstance(device, str):
        from rewardlab.embed.devices import resolve_device

        device = resolve_device(device)
    if device is None or not fits_on_device(head):
        return head.fit(data, on_progress)
    fit: Any = head.fit  # the protocol's fit has no device; heads with fits_on_device take one
    result: RewardHead = fit(data, on_progress, device=device)
    return result


def move_head(head: RewardHead, device: torch.device | str) -> RewardHead:
    """A fitted ``head`` that predicts on ``device`` from now on, when it can (the rest stay on the CPU)."""
    if fits_on_device(head):
        moved: RewardHead = getattr(head, "move_to")(device)  # noqa: B009 — only heads with fits_on_device have it
        return moved
    return head
