"""Forwards of diffusers modules that copy a host tensor to the GPU on every call, rewritten to build it
on the GPU, so that a CUDA graph can capture the model (use_cuda_graphs applies them).

A CUDA graph cannot capture a copy from pageable host memory ("Cannot copy between CPU and CUDA tensors
during CUDA graph capture unless the CPU tensor is pinned"), and the capture of the whole forward then
fails. Each rewrite here computes the same values, bit for bit, with the tensor made on the device the
module's inputs are on; it is set on the instance (the class, the state dict and the hooks stay), and
any call it does not handle runs the class's forward.

- ChromaCombinedTimestepTextProjEmbeddings (Chroma, diffusers 0.42.1): projects a guidance of 0 made
  with ``torch.tensor([0] * batch)`` on the host. Its sinusoidal embedding is sin(0) = 0 and cos(0) = 1
  in every channel on any device, so the rewrite makes the zeros on the timestep's device.
- CogView4RotaryPosEmbed (CogView4, diffusers 0.42.1): computes its (cos, sin) tables on the host every
  forward, which each attention then copies to the GPU (apply_rotary_emb). They depend on the latent's
  height and width only: the rewrite computes them with the class's forward once per size and device (the
  first call, which use_cuda_graphs makes in its warm-up, before the capture) and keeps the device copies,
  the same bits, for the later calls.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from .instance_forward import has_forward, set_forward


def _chroma_time_text_forward(self, timestep: Tensor) -> Tensor:
    batch = timestep.shape[0]
    dtype = timestep.dtype
    time = self.time_proj(timestep).to(dtype=dtype)
    # the class's forward projects torch.tensor([0] * batch), an int64 host tensor: the same zeros here
    guidance = self.guidance_proj(torch.zeros(batch, dtype=torch.long, device=timestep.device)).to(dtype=dtype)
    index = self.mod_proj.to(dtype=time.dtype, device=time.device).repeat(batch, 1, 1)
    time_guidance = torch.cat([time, guidance], dim=1).unsqueeze(1).repeat(1, index.shape[1], 1)
    return torch.cat([time_guidance, index], dim=-1).to(dtype)


def _cogview4_rope_forward(self, hidden_states: Tensor) -> tuple[Tensor, Tensor]:
    # the tables depend on the module's constants and the latent's height and width (the batch and channels
    # not at all): made once per size and device by the class's forward, kept on the device
    key = (tuple(hidden_states.shape[-2:]), hidden_states.device, self.dim, self.patch_size,
           tuple(self.rope_axes_dim), self.theta)
    tables = self.__dict__.setdefault("_int8dit_device_tables", {})
    if key not in tables:
        cos, sin = type(self).forward(self, hidden_states)
        tables[key] = (cos.to(hidden_states.device), sin.to(hidden_states.device))
    return tables[key]


# diffusers class name -> the forward that builds its host tensor on the device
_REWRITES = {
    "ChromaCombinedTimestepTextProjEmbeddings": _chroma_time_text_forward,
    "CogView4RotaryPosEmbed": _cogview4_rope_forward,
}


def make_capturable(model: nn.Module) -> int:
    """Give every module of ``model`` whose diffusers class copies a host tensor to the GPU in each
    forward (this module's docstring lists them) a forward that builds it on the device instead, with the
    same values. Returns how many modules it changed; calling it again changes nothing more."""
    changed = 0
    for module in model.modules():
        forward = _REWRITES.get(type(module).__name__)
        if forward is None or has_forward(module, forward):
            continue
        set_forward(module, forward)
        changed += 1
    return changed
