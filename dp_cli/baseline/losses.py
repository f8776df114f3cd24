"""The losses the TBPS field trains CLIP with: image-text contrastive (ITC) and IRRA's SDM."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def itc_loss(image_feats: torch.Tensor, text_feats: torch.Tensor, logit_scale: float) -> torch.Tensor:
    """Symmetric InfoNCE over the batch, pairs on the diagonal."""
    img = F.normalize(image_feats, dim=-1)
    txt = F.normalize(text_feats, dim=-1)
    logits = logit_scale * img @ txt.t()
    labels = torch.arange(len(img), device=img.device)
    return (F.cross_entropy(logits, labels) + F.cross_entropy(logits.t(), labels)) / 2


def sdm_loss(image_feats: torch.Tensor, text_feats: torch.Tensor, person_ids: torch.Tensor,
             logit_scale: float, epsilon: float = 1e-8) -> torch.Tensor:
    """Similarity-distribution matching (IRRA, CVPR 2023): KL(softmax(sim) || true matching distribution).

    Every pair of the same person is a positive, so several images of one identity in a batch help.
    """
    pid = person_ids.reshape(-1, 1)
    labels = (pid == pid.t()).float()
    img = F.normalize(image_feats, dim=-1)
    txt = F.normalize(text_feats, dim=-1)
    t2i = logit_scale * txt @ img.t()
    i2t = t2i.t()
    target = labels / labels.sum(dim=1, keepdim=True)
    log_target = torch.log(target + epsilon)
    i2t_loss = F.softmax(i2t, dim=1) * (F.log_softmax(i2t, dim=1) - log_target)
    t2i_loss = F.softmax(t2i, dim=1) * (F.log_softmax(t2i, dim=1) - log_target)
    return i2t_loss.sum(dim=1).mean() + t2i_loss.sum(dim=1).mean()


LOSSES = {"itc", "sdm"}
