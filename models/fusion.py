"""The fusion module: flagged caption tokens absorb the reference image's embedding (FastComposer-style)."""

from __future__ import annotations

import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn


class MLP(nn.Module):
    """LayerNorm -> Linear -> GELU -> Linear, with an optional residual."""

    def __init__(self, in_dim: int, out_dim: int, hidden_dim: int, use_residual: bool = True):
        super().__init__()
        if use_residual and in_dim != out_dim:
            raise ValueError(f"a residual MLP needs in_dim == out_dim, got {in_dim} and {out_dim}")
        self.layernorm = nn.LayerNorm(in_dim)
        self.fc1 = nn.Linear(in_dim, hidden_dim)
        self.fc2 = nn.Linear(hidden_dim, out_dim)
        self.act_fn = nn.GELU()
        self.use_residual = use_residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.fc2(self.act_fn(self.fc1(self.layernorm(x))))
        return out + x if self.use_residual else out


class FusionModule(ModelMixin, ConfigMixin):
    """Replace each flagged token by LayerNorm(MLP2(MLP1(concat(tok, img)) + tok)); -1 positions untouched."""

    @register_to_config
    def __init__(self, text_dim: int, image_dim: int, img_token_num: int = 1):
        super().__init__()
        if img_token_num != 1:
            raise ValueError(f"img_token_num={img_token_num}: only 1 image token per attribute is supported")
        self.mlp1 = MLP(text_dim + image_dim, text_dim, text_dim, use_residual=False)
        self.mlp2 = MLP(text_dim, text_dim, text_dim, use_residual=True)
        self.layer_norm = nn.LayerNorm(text_dim)

    def fuse(self, tokens: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
        """The formula on matched rows: tokens [N, D], images [N, Di] -> [N, D]."""
        return self.layer_norm(self.mlp2(self.mlp1(torch.cat([tokens, images], dim=-1)) + tokens))

    def forward(self, text_embeds: torch.Tensor, image_embeds: torch.Tensor,
                token_positions: torch.Tensor) -> torch.Tensor:
        """text_embeds [B, L, D], image_embeds [B, A, Di], token_positions [B, A] (-1: none) -> [B, L, D]."""
        if image_embeds.shape[:2] != token_positions.shape:
            raise ValueError(f"image_embeds {tuple(image_embeds.shape)} and token_positions "
                             f"{tuple(token_positions.shape)} disagree on [B, A]")
        b_idx, a_idx = torch.nonzero(token_positions >= 0, as_tuple=True)
        if b_idx.numel() == 0:
            return text_embeds
        p_idx = token_positions[b_idx, a_idx]
        fused = self.fuse(text_embeds[b_idx, p_idx], image_embeds[b_idx, a_idx].to(text_embeds.dtype))
        return text_embeds.index_put((b_idx, p_idx), fused.to(text_embeds.dtype))
