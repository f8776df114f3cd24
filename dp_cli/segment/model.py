"""Load a semantic-segmentation model through transformers' Auto classes and predict ATR label maps."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dp_cli.data.attributes import LABEL_SETS
from dp_cli.errors import ModelError
from dp_cli.segment.labels import lut_from_names


@dataclass
class Segmenter:
    """A loaded model, its (PIL-backend) image processor and the model-id -> ATR-id lookup table."""

    model: Any
    processor: Any
    lut: np.ndarray
    device: Any
    name: str

    def predict(self, images: list) -> list[np.ndarray]:
        """PIL RGB images -> ATR label maps (uint8, each with its image's size)."""
        import torch
        import torch.nn.functional as F

        batch = self.processor(images=images, return_tensors="pt")
        pixel_values = batch["pixel_values"].to(self.device, dtype=next(self.model.parameters()).dtype)
        with torch.inference_mode():
            logits = self.model(pixel_values=pixel_values).logits
        maps = []
        for i, image in enumerate(images):
            up = F.interpolate(logits[i:i + 1].float(), size=(image.height, image.width), mode="bilinear",
                               align_corners=False)
            ids = up.argmax(1)[0].to("cpu", torch.uint8).numpy()
            maps.append(self.lut[ids])
        return maps


def load_segmenter(ref: str, device: str, label_set: str = "auto", labels: dict[int, str] | None = None) -> Segmenter:
    """Load model + image processor (hub id or folder; HF_HUB_OFFLINE respected); ModelError when unusable."""
    from transformers import AutoImageProcessor, AutoModelForSemanticSegmentation
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    from dp_models.loading import model_errors

    source = _model_source(ref)
    config = _load_config(ref, source)
    with model_errors(ref, "segmentation model"):
        model, info = AutoModelForSemanticSegmentation.from_pretrained(source, output_loading_info=True)
    head = sorted(k for k in info.get("missing_keys", ()) if not k.startswith(_base_prefix(model)))
    if head:
        raise ModelError(f"{ref}: the checkpoint has no trained segmentation head (missing {head[0]} and "
                         f"{len(head) - 1} more weights; architectures {config.architectures})",
                         hint="use a *ForSemanticSegmentation checkpoint such as mattmdjaga/segformer_b2_clothes")
    with model_errors(ref, "image processor (preprocessor_config.json)"):
        processor = AutoImageProcessor.from_pretrained(source, **_pil_backend())
    lut = model_lut(ref, config, label_set, labels or {})
    from dp_cli.distributed import pick_device

    dev = pick_device(device)
    model.to(dev).eval()
    return Segmenter(model, processor, lut, dev, ref)


def _model_source(ref: str) -> str:
    """What to load `ref` from: its folder, the hub id, or (hub unreachable) the id's cached snapshot."""
    from dp_models.loading import checked_ref

    if ref.startswith(("/", ".", "~")) and not Path(ref).expanduser().exists():
        raise ModelError(f"{ref}: model folder not found", hint="check the path, or give a hub id like org/name")
    return checked_ref(ref, "segmentation model")[0]  # a hub id: fail fast, no half minute of retries


def _load_config(ref: str, source: str) -> Any:
    from transformers import AutoConfig
    from transformers.models.auto.modeling_auto import MODEL_FOR_SEMANTIC_SEGMENTATION_MAPPING

    from dp_models.loading import model_errors

    with model_errors(ref, "the model config"):
        config = AutoConfig.from_pretrained(source)
    if type(config) not in MODEL_FOR_SEMANTIC_SEGMENTATION_MAPPING:
        raise ModelError(f"{ref}: a {config.model_type!r} model has no semantic-segmentation head",
                         hint="use a segmentation model such as mattmdjaga/segformer_b2_clothes")
    return config


def model_lut(ref: str, config: Any, label_set: str, labels: dict[int, str]) -> np.ndarray:
    """Lookup table model id -> ATR id, from the label set setting or the model's id2label names."""
    n = int(config.num_labels)
    if label_set == "custom":
        names = labels
    elif label_set in LABEL_SETS:
        names = dict(enumerate(LABEL_SETS[label_set]))
    else:
        names = {int(k): v for k, v in (config.id2label or {}).items()}
    missing = [i for i in range(n) if i not in names]
    if missing:
        raise ModelError(f"{ref}: model has {n} labels but label set {label_set!r} names only {len(names)} "
                         f"(missing ids {missing[:8]})",
                         hint="set label_set (and the segment.labels table) in dp.toml to match the model")
    try:
        return lut_from_names({i: names[i] for i in range(n)}, f"{ref}: model labels")
    except ValueError as exc:
        raise ModelError(str(exc), hint="use an ATR/LIP parsing model, or map its ids with label_set = "
                                        "\"custom\" and a segment.labels table in dp.toml") from None


def _pil_backend() -> dict[str, Any]:
    """The PIL/numpy image processor (torchvision's fast one may not be installed): transformers 5 names it
    with `backend`, 4.x with `use_fast=False`."""
    import transformers

    return {"backend": "pil"} if int(transformers.__version__.split(".")[0]) >= 5 else {"use_fast": False}


def _base_prefix(model: Any) -> str:
    return getattr(model, "base_model_prefix", "") + "." if getattr(model, "base_model_prefix", "") else "\0"
