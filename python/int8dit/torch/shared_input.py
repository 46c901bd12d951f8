"""Sibling layers that read the same input quantize it once.

diffusers' attention computes ``to_q(x)``, ``to_k(x)`` and ``to_v(x)`` on one tensor (and, in joint
attention, ``add_q_proj``/``add_k_proj``/``add_v_proj`` on another). Each int8dit Linear quantizes its
own input, so that input was quantized three times: on DiT-XL/2 (8192 tokens x 1152) about 30 us a
block of the ~130 us that quantization costs there. quantize_ marks the int8dit Linears that are
children of one module, have the same in_features and no SmoothQuant divisor, as sharing their input
(``Linear.shares_input``). Such a layer, when it quantizes its input itself, records the int8 rows and
scales in the producers' table (int8dit.torch.produced), where the fused producers record theirs: a
layer then called with the very tensor (same object, same version counter, same stream) runs only its
GEMM. Results are bit-identical: the quantization of a tensor does not depend on which layer asks
for it.

The table holds its inputs only weakly (produced.py), so no activation outlives its forward because
of it. Only plain eager calls share; traced calls (torch.compile, make_fx), inputs that need a
gradient and inference-mode tensors (which keep no version counter, so an in-place write between two
siblings could not be seen) take the layer's usual path.
"""
from __future__ import annotations

import torch


# Children that read an input of their own by construction, never their siblings' (diffusers' joint
# attention's projection of the text stream's attention output): recording its rows would cost host
# time for nobody to read them.
_OWN_INPUT_NAMES = ("to_add_out",)


def share_sibling_inputs(model: torch.nn.Module) -> int:
    """Mark every group of >= 2 int8dit Linears that are children of one module, with the same
    in_features and device and no SmoothQuant divisor, as sharing their input (but for the output
    projections of _OWN_INPUT_NAMES). Returns the number of groups."""
    from .linear import Linear

    groups = 0
    for parent in model.modules():
        by_key: dict = {}
        for name, child in parent.named_children():
            if isinstance(child, Linear) and child.smooth is None and name not in _OWN_INPUT_NAMES:
                by_key.setdefault((child.in_features, child.weight.device), []).append(child)
        for members in by_key.values():
            if len(members) < 2:
                continue
            for m in members:
                m.shares_input = True
            groups += 1
    return groups
