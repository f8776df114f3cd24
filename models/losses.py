"""Denoising (optionally masked) and cross-attention localization losses."""

from __future__ import annotations

import torch
import torch.nn.functional as F

LOCALIZATION_KINDS = ("balanced_l1",)


def _resize_masks(masks: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """[B, K, H, W] float masks -> [B, K, h, w] (area average when shrinking: soft borders)."""
    if tuple(masks.shape[-2:]) == tuple(size):
        return masks
    mode = "area" if masks.shape[-2] >= size[0] and masks.shape[-1] >= size[1] else "bilinear"
    return F.interpolate(masks, size=size, mode=mode)


def denoising_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """MSE; with `mask` ([B, H, W] or [B, 1, H, W], any resolution) the mean squared error inside it only."""
    err = (pred.float() - target.float()) ** 2
    if mask is None:
        return err.mean()
    m = mask.float()
    m = m[:, None] if m.ndim == 3 else m
    m = _resize_masks(m, tuple(err.shape[-2:])).to(err.device)
    weight = m.expand_as(err)
    return (err * weight).sum() / weight.sum().clamp_min(1.0)


def balanced_l1(probs: torch.Tensor, masks: torch.Tensor, normalize: bool = False) -> torch.Tensor:
    """Per attribute: mean attention over background - mean over mask. probs, masks [B, A, N] -> [B, A]."""
    if normalize:
        probs = probs / (probs.max(dim=-1, keepdim=True).values + 1e-5)
    background = 1.0 - masks
    bg = (probs * background).sum(-1) / (background.sum(-1) + 1e-5)
    fg = (probs * masks).sum(-1) / (masks.sum(-1) + 1e-5)
    return bg - fg


def _as_maps(maps) -> list[tuple[torch.Tensor, tuple[int, int]]]:
    """Accept [B, A, h, w] tensors or ([B, A, h*w], (h, w)) pairs."""
    out = []
    for item in maps:
        if isinstance(item, torch.Tensor):
            out.append((item.flatten(2), tuple(item.shape[-2:])))
        else:
            tensor, (h, w) = item
            out.append((tensor.reshape(*tensor.shape[:2], h * w), (h, w)))
    return out


def localization_loss(maps, masks: torch.Tensor, valid: torch.Tensor, kind: str = "balanced_l1",
                      normalize: bool = False) -> torch.Tensor:
    """Mean over layers and valid attributes of the balanced-L1 loss of head-averaged attention maps."""
    if kind not in LOCALIZATION_KINDS:
        raise ValueError(f"unknown localization loss kind {kind!r}; known: {', '.join(LOCALIZATION_KINDS)}")
    pairs = _as_maps(maps)
    if not pairs:
        raise ValueError("localization_loss got no attention maps (is the capture installed?)")
    weight = valid.float()
    # no branch on `count`: reading it would make the host wait for the GPU in the middle of the step;
    # with no valid attribute every term is multiplied by 0 and the maps stay in the graph
    count = weight.sum().clamp_min(1.0)
    total = pairs[0][0].new_zeros((), dtype=torch.float32)
    resized: dict[tuple[int, int], torch.Tensor] = {}  # layers at the same resolution share their masks
    for probs, size in pairs:
        if size not in resized:
            resized[size] = _resize_masks(masks.float().to(probs.device), size).flatten(2)
        m = resized[size]
        per_attr = balanced_l1(probs.float(), m, normalize)
        total = total + (per_attr * weight.to(per_attr.device)).sum() / count
    return total / len(pairs)
