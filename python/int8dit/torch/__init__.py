"""PyTorch layer of int8dit: custom ops, the quantized Linear, and quantize_ for whole models."""
from .adanorm import FusedAdaLayerNormZero, fuse_adaln_zero
from .attention import join_heads, qk_norm_rope
from .attention_prep import fuse_attention_prep, unfuse_attention_prep
from .cuda_graphs import cuda_graphs_of, stop_cuda_graphs, use_cuda_graphs
from .flux3 import compute_modulation_once
from .flux_attention import FluxQKNormRopeProcessor
from .flux_single import fuse_flux_single_blocks
from .fused import (concat_gelu_quantize, gelu_quantize, layernorm_modulate_quantize, modulated_linears,
                    rmsnorm_quantize)
from .joint_attention import JointAttentionPrepProcessor
from .linear import Linear
from .lora import LoraFusion, fuse_lora, unfuse_lora
from .mlp import GeluMLP, fuse_gelu_mlps
from .ops import gemm_w8a8, linear, linear_w8a8, quantize_rows
from .quantize import DIT_DEFAULT_EXCLUDE, DIT_MIN_FEATURES, QuantizeReport, quantize_, selected_linears
from .qwen_attention import QwenAttentionPrepProcessor
from .swiglu import (PackedSwigluMLP, SwigluFeedForward, SwigluMLP, concat_swiglu_quantize, fuse_swiglu_mlps,
                     swiglu_quantize)
from .weights import quantize_weight

__all__ = [
    "DIT_DEFAULT_EXCLUDE",
    "DIT_MIN_FEATURES",
    "FluxQKNormRopeProcessor",
    "FusedAdaLayerNormZero",
    "GeluMLP",
    "JointAttentionPrepProcessor",
    "Linear",
    "LoraFusion",
    "QuantizeReport",
    "PackedSwigluMLP",
    "QwenAttentionPrepProcessor",
    "SwigluFeedForward",
    "SwigluMLP",
    "concat_gelu_quantize",
    "compute_modulation_once",
    "concat_swiglu_quantize",
    "cuda_graphs_of",
    "fuse_adaln_zero",
    "fuse_attention_prep",
    "fuse_flux_single_blocks",
    "fuse_gelu_mlps",
    "fuse_lora",
    "fuse_swiglu_mlps",
    "gelu_quantize",
    "gemm_w8a8",
    "join_heads",
    "linear",
    "layernorm_modulate_quantize",
    "linear_w8a8",
    "modulated_linears",
    "quantize_",
    "quantize_rows",
    "qk_norm_rope",
    "quantize_weight",
    "rmsnorm_quantize",
    "selected_linears",
    "stop_cuda_graphs",
    "swiglu_quantize",
    "unfuse_attention_prep",
    "unfuse_lora",
    "use_cuda_graphs",
]
