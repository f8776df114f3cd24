"""Fine-tune CLIP for text-to-person retrieval (ITC + SDM) under accelerate, then score the test split."""

from __future__ import annotations

import math
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

from dp_cli.baseline.config import BaselineConfig
from dp_cli.baseline.data import RetrievalItem, RetrievalTrainSet, load_image, make_collate
from dp_cli.baseline.losses import itc_loss, sdm_loss
from dp_cli.data.dataset import PersonDataset
from dp_cli.errors import TrainingError
from dp_cli.fsutil import replace_dir, usual_modes

ProgressFn = Callable[[int, int, float], None]  # (step, total, loss)


@dataclass
class RunResult:
    """One training run and its test metrics."""

    name: str
    seed: int
    train_items: int
    train_persons: int
    metrics: dict[str, float]
    final_loss: float
    seconds: float
    model_dir: Path
    losses: list[float] = field(default_factory=list)


def load_clip(cfg: BaselineConfig):
    """CLIPModel + tokenizer from a hub id / folder, or a tiny CLIP from scratch (toy preset)."""
    if cfg.clip_model is None:
        return _tiny_clip(cfg)
    from dp_cli.eval.embeddings import load_clip_parts

    return load_clip_parts(cfg.clip_model)


def _tiny_clip(cfg: BaselineConfig):
    """A small CLIP initialised from the seed, with the tiny toy-world tokenizer."""
    import tempfile

    from transformers import CLIPConfig, CLIPModel, CLIPTokenizer

    from dp_models.tiny import write_tiny_tokenizer

    with tempfile.TemporaryDirectory() as tmp:
        tokenizer = CLIPTokenizer.from_pretrained(write_tiny_tokenizer(Path(tmp)))
    h, w = cfg.size
    config = CLIPConfig(
        text_config={"vocab_size": len(tokenizer), "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
                     "num_attention_heads": 4, "max_position_embeddings": cfg.max_text_length,
                     "bos_token_id": tokenizer.bos_token_id, "eos_token_id": tokenizer.eos_token_id,
                     "pad_token_id": tokenizer.pad_token_id},
        vision_config={"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
                       "image_size": max(h, w), "patch_size": 8},
        projection_dim=64, logit_scale_init_value=math.log(1 / cfg.temperature))
    return CLIPModel(config), tokenizer


def encode_images(model, pixel_values: torch.Tensor) -> torch.Tensor:
    return model.get_image_features(pixel_values=pixel_values, interpolate_pos_encoding=True).pooler_output


def encode_texts(model, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    return model.get_text_features(input_ids=input_ids, attention_mask=attention_mask).pooler_output


class DualEncoder(torch.nn.Module):
    """One forward for both towers, so DDP (accelerate, torchrun) sees a normal forward call."""

    def __init__(self, clip):
        super().__init__()
        self.clip = clip

    def forward(self, pixel_values, input_ids, attention_mask):
        return encode_images(self.clip, pixel_values), encode_texts(self.clip, input_ids, attention_mask)


def train_run(cfg: BaselineConfig, accelerator, items: list[RetrievalItem], test: PersonDataset, seed: int,
              out_dir: Path, name: str, on_step: ProgressFn | None = None) -> RunResult:
    """Train one model on `items` from `seed`, save it, and score it on the test split."""
    from accelerate.utils import set_seed

    # 1. Model, data, optimiser from the seed: identical settings give identical runs.
    start = time.perf_counter()
    set_seed(seed)
    model, tokenizer = load_clip(cfg)
    dataset = RetrievalTrainSet(items, cfg.size, seed=seed)
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=cfg.batch_size, shuffle=True, drop_last=len(items) > cfg.batch_size,
        num_workers=cfg.num_workers, collate_fn=make_collate(tokenizer, cfg.max_text_length),
        generator=torch.Generator().manual_seed(seed))
    model = DualEncoder(model)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    total = cfg.epochs * max(1, math.ceil(len(loader) / max(1, accelerator.num_processes)))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _warmup_cosine(cfg, total, len(loader)))
    model, optimizer, loader, scheduler = accelerator.prepare(model, optimizer, loader, scheduler)
    # 2. Fit.
    losses = _fit(cfg, accelerator, model, optimizer, loader, scheduler, dataset, total, on_step)
    # 3. Save and score (main process).
    model_dir = out_dir / name / f"seed-{seed}" / "model"
    accelerator.wait_for_everyone()
    metrics: dict[str, float] = {}
    if accelerator.is_main_process:
        plain = accelerator.unwrap_model(model).clip
        _save_model(plain, tokenizer, model_dir)
        metrics = score(plain, tokenizer, test, cfg, accelerator.device)
    accelerator.wait_for_everyone()
    return RunResult(name, seed, len(items), len(dataset.pid_index), metrics, losses[-1] if losses else float("nan"),
                     time.perf_counter() - start, model_dir, losses)


def _warmup_cosine(cfg: BaselineConfig, total: int, per_epoch: int):
    warm = min(total - 1, cfg.warmup_epochs * per_epoch) if total > 1 else 0

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / (warm + 1)
        progress = (step - warm) / max(1, total - warm)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return factor


def _fit(cfg, accelerator, model, optimizer, loader, scheduler, dataset, total, on_step) -> list[float]:
    logit_scale = 1.0 / cfg.temperature
    losses, step = [], 0
    model.train()
    for epoch in range(cfg.epochs):
        dataset.epoch = epoch
        for batch in loader:
            img, txt = model(batch["pixel_values"], batch["input_ids"], batch["attention_mask"])
            loss = img.new_zeros(())
            if "itc" in cfg.losses:
                loss = loss + itc_loss(img, txt, logit_scale)
            if "sdm" in cfg.losses:
                loss = loss + sdm_loss(img, txt, batch["pid"], logit_scale)
            if not torch.isfinite(loss):
                raise TrainingError(f"non-finite loss at step {step}", hint="lower --lr or use --mixed-precision no")
            accelerator.backward(loss)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            losses.append(float(loss.detach()))
            if on_step:
                on_step(step, total, losses[-1])
    return losses


def _save_model(model, tokenizer, model_dir: Path) -> None:
    """save_pretrained to a temporary folder, then rename (a half-written model never has the name)."""
    tmp = model_dir.with_name(model_dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    usual_modes(tmp)
    replace_dir(tmp, model_dir)


@torch.no_grad()
def score(model, tokenizer, test: PersonDataset, cfg: BaselineConfig, device) -> dict[str, float]:
    """Embed the test split (captions as queries, images as gallery) and compute dp eval's metrics."""
    from dp_cli.eval.retrieval import retrieval_metrics

    model.eval()
    records = test.split("test")
    if not records:
        raise TrainingError(f"{test.root}: the dataset has no test split to score on")
    gallery, g_ids = [], []
    for i in range(0, len(records), cfg.eval_batch_size):
        chunk = records[i:i + cfg.eval_batch_size]
        pix = torch.stack([load_image(test.image_path(r), cfg.size) for r in chunk]).to(device)
        gallery.append(encode_images(model, pix).float().cpu())
        g_ids += [r.person_id for r in chunk]
    captions = [(c, r.person_id) for r in records for c in r.captions]
    queries, q_ids = [], []
    for i in range(0, len(captions), cfg.eval_batch_size):
        chunk = captions[i:i + cfg.eval_batch_size]
        tok = tokenizer([c for c, _ in chunk], padding="max_length", truncation=True,
                        max_length=cfg.max_text_length, return_tensors="pt").to(device)
        queries.append(encode_texts(model, tok["input_ids"], tok["attention_mask"]).float().cpu())
        q_ids += [p for _, p in chunk]
    result = retrieval_metrics(torch.cat(queries).numpy(), q_ids, torch.cat(gallery).numpy(), g_ids)
    return {**{f"R{k}": v for k, v in result.rank.items()}, "mAP": result.mAP, "mINP": result.mINP}
