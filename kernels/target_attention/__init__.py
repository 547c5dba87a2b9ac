"""Jagged multi-head target attention: references, accelerated kernels and a dispatcher."""

from kernels.target_attention.dispatch import AttentionBackend, target_attention

__all__ = ["AttentionBackend", "target_attention"]
