"""Multi-head attention of the UNet and the sketch encoder, on PyTorch's fused SDPA kernel.

One class covers the three uses in the checkpoint:
- self-attention (no context): spatial attention within a frame, temporal attention across frames;
- cross-attention to a text context (the sketch encoder's plain SD-2.1 attention over all tokens);
- ToonCrafter's image cross-attention: the first `text_context_len` (77) context tokens are the
  prompt and go through to_k/to_v, the rest are keyframe image tokens and go through their own
  to_k_ip/to_v_ip. The query attends to each group with its own softmax and the two results are
  added (image weight 1.0) before to_out. The 77 split is fixed by the checkpoint's training.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class Attention(nn.Module):
    def __init__(
        self,
        query_dim: int,
        context_dim: int | None = None,
        heads: int = 8,
        dim_head: int = 64,
        *,
        image_cross_attention: bool = False,
        text_context_len: int = 77,
        image_scale: float = 1.0,
    ) -> None:
        super().__init__()
        inner_dim = heads * dim_head
        context_dim = query_dim if context_dim is None else context_dim
        self.heads = heads
        self.dim_head = dim_head
        self.to_q = nn.Linear(query_dim, inner_dim, bias=False)
        self.to_k = nn.Linear(context_dim, inner_dim, bias=False)
        self.to_v = nn.Linear(context_dim, inner_dim, bias=False)
        self.to_out = nn.Sequential(nn.Linear(inner_dim, query_dim))
        self.image_cross_attention = image_cross_attention
        self.text_context_len = text_context_len
        self.image_scale = image_scale
        if image_cross_attention:
            self.to_k_ip = nn.Linear(context_dim, inner_dim, bias=False)
            self.to_v_ip = nn.Linear(context_dim, inner_dim, bias=False)
        #: Largest number of sequences handed to one SDPA call (None: all at once). Splitting the
        #: batch axis is exact; it bounds memory and keeps CUDA grid sizes legal for the temporal
        #: layers, whose batch is every pixel of every frame.
        self.chunk_size: int | None = None
        #: Largest number of query tokens handed to one SDPA call (None: all). Each query row has
        #: its own softmax over all keys, so splitting the queries is exact too; it bounds the
        #: attention matrix of spatial attention, whose sequence is a whole frame.
        self.query_chunk_size: int | None = None

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        """x (N, Lq, query_dim), context (N, Lk, context_dim) or None for self-attention."""
        q = self.to_q(x)
        if context is None:
            out = self._attend(q, self.to_k(x), self.to_v(x))
        elif self.image_cross_attention:
            text = context[:, : self.text_context_len]
            image = context[:, self.text_context_len :]
            out = self._attend(q, self.to_k(text), self.to_v(text))
            if image.shape[1] > 0:
                image_out = self._attend(q, self.to_k_ip(image), self.to_v_ip(image))
                out = out + self.image_scale * image_out
        else:
            out = self._attend(q, self.to_k(context), self.to_v(context))
        return self.to_out(out)

    def _attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        n = q.shape[0]
        step = n if not self.chunk_size else self.chunk_size
        if step >= n:
            return self._sdpa(q, k, v)
        parts = [self._sdpa(q[i : i + step], k[i : i + step], v[i : i + step]) for i in range(0, n, step)]
        return torch.cat(parts, dim=0)

    def _sdpa(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        n, lq, _ = q.shape
        q, k, v = (t.reshape(n, t.shape[1], self.heads, self.dim_head).transpose(1, 2) for t in (q, k, v))
        step = self.query_chunk_size or lq
        scale = self.dim_head**-0.5
        parts = [F.scaled_dot_product_attention(q[:, :, i : i + step], k, v, scale=scale) for i in range(0, lq, step)]
        out = parts[0] if len(parts) == 1 else torch.cat(parts, dim=2)
        return out.transpose(1, 2).reshape(n, lq, self.heads * self.dim_head)


def set_attention_chunk(model: nn.Module, chunk_size: int | None, query_chunk_size: int | None = None) -> None:
    """Cap the sequences (and the query tokens) per SDPA call in every attention of `model`
    (exact; trades speed for memory)."""
    for name, value in (("attention chunk size", chunk_size), ("query chunk size", query_chunk_size)):
        if value is not None and value < 1:
            raise ValueError(f"{name} must be at least 1, got {value}")
    for module in model.modules():
        if isinstance(module, Attention):
            module.chunk_size = chunk_size
            module.query_chunk_size = query_chunk_size
