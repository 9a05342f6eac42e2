"""int8 Linear layers with per-token activation scales, for the LLM encoder's ``int8`` precision.

Weights: int8 with one scale per output channel, computed once. Inputs: each row (token) quantised
to int8 with its own scale at every call, then an int8 × int8 → int32 matrix multiply
(``torch._int_mm``, exact integer accumulation) rescaled to fp32. Input entries above
`OUTLIER_THRESHOLD` (a decoder's few "massive activation" channels) are taken out before the row's
scale is chosen and multiplied in fp32 with their de-quantised weight rows, as LLM.int8() (Dettmers
et al., 2022) does: otherwise one huge entry sets the scale and flattens the rest of its row. Every
step is per entry or per row, so a text's vector does not depend on its batch mates.
Why per token rather than torch's per-tensor dynamic quantisation: see `rewardlab.embed.llm_quant`.
"""

from __future__ import annotations

from typing import Any

import torch

from rewardlab.errors import EncoderError

#: Inputs larger than this in magnitude bypass int8 (the LLM.int8() paper's threshold, measured here too).
OUTLIER_THRESHOLD = 6.0


class PerTokenInt8Linear(torch.nn.Module):
    """``nn.Linear`` as int8 × int8 → int32 with per-output-channel weight scales and per-token input scales."""

    weight_q: torch.Tensor
    weight_scale: torch.Tensor

    def __init__(self, linear: Any) -> None:
        super().__init__()
        weight = linear.weight.detach().float()
        scale = weight.abs().amax(dim=1).clamp(min=1e-12) / 127
        self.register_buffer("weight_q", torch.round(weight / scale[:, None]).clamp(-127, 127).to(torch.int8).t().contiguous())
        self.register_buffer("weight_scale", scale)
        self.bias = None if linear.bias is None else torch.nn.Parameter(linear.bias.detach().float(), requires_grad=False)
        self.out_features = int(weight.shape[0])

    def forward(self, x: Any) -> Any:
        rows = x.reshape(-1, x.shape[-1]).float()
        outliers = rows.abs() > OUTLIER_THRESHOLD
        regular = rows.masked_fill(outliers, 0.0)
        scale = regular.abs().amax(dim=1, keepdim=True).clamp(min=1e-12) / 127
        product = torch._int_mm(torch.round(regular / scale).to(torch.int8), self.weight_q)
        out = product.float() * scale * self.weight_scale
        columns = outliers.any(dim=0).nonzero().flatten()
        if columns.numel():  # the few outlier entries times their (de-quantised) weight rows, in fp32
            sparse = rows[:, columns] * outliers[:, columns]
            out = out + sparse @ (self.weight_q[columns].float() * self.weight_scale)
        if self.bias is not None:
            out = out + self.bias
        return out.reshape(*x.shape[:-1], self.out_features)


def _check_int8_kernel() -> None:
    """A clear error where this torch build has no CPU int8 matrix multiply."""
    import torch

    try:
        torch._int_mm(torch.ones((2, 8), dtype=torch.int8), torch.ones((8, 8), dtype=torch.int8))
    except (AttributeError, RuntimeError, NotImplementedError) as exc:
        raise EncoderError(f"precision int8 needs torch's int8 matrix multiply on CPU (torch._int_mm): {exc}") from None


def quantize_linears(model: Any) -> Any:
    """Every ``nn.Linear`` in ``model`` replaced in place by a `PerTokenInt8Linear`."""
    import torch

    _check_int8_kernel()
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, torch.nn.Linear):
                setattr(parent, name, PerTokenInt8Linear(child))
    return model
