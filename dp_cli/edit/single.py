"""Single-image mode: one person image, its parsing map and caption, references named on the command line."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dp_cli.data.attributes import ATTRIBUTE_TYPES, LABEL_SETS
from dp_cli.data.images import load_parsing, load_rgb
from dp_cli.edit.plan import check_labels
from dp_cli.errors import DataError, UsageError
from dp_cli.fsutil import image_format, save_image_atomic

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff")


@dataclass
class AttributeSpec:
    """`--attribute TYPE=IMAGE[@MASK][:LABEL]`."""

    type: str
    image: Path
    label: str
    mask: Path | None = None


def parse_attribute(spec: str) -> AttributeSpec:
    """'hair=gold.png', 'bottomcloth=white_skirt.png:white skirt' (label default: the file's stem), or with
    the garment's mask 'bottomcloth=skirt.png@skirt_mask.png:white skirt'."""
    if "=" not in spec:
        raise UsageError(f"--attribute {spec!r}: expected TYPE=IMAGE[@MASK][:LABEL]", hint="e.g. hair=gold.png")
    type_name, rest = (p.strip() for p in spec.split("=", 1))
    if type_name not in ATTRIBUTE_TYPES:
        raise UsageError(f"--attribute {spec!r}: unknown attribute type {type_name!r}",
                      hint=f"use one of {', '.join(ATTRIBUTE_TYPES)}")
    path, label = rest, ""
    if not Path(rest).expanduser().is_file():  # a file whose name holds ':' or '@' is taken whole
        for at in (i for i, c in enumerate(rest) if c == ":"):  # the first ':' after an image path ends it
            head = rest[:at]
            if head.lower().endswith(IMAGE_SUFFIXES) or Path(head).expanduser().is_file():
                path, label = head, rest[at + 1:].strip().strip('"').strip("'")
                break
    mask = None
    image, at, mask_path = path.rpartition("@")
    if (at and image and not Path(path).expanduser().is_file()
            and (mask_path.lower().endswith(IMAGE_SUFFIXES) or Path(mask_path).is_file())):
        path, mask = image, Path(mask_path).expanduser()
    if not path:
        raise UsageError(f"--attribute {spec!r}: no image path", hint="e.g. hair=gold.png")
    return AttributeSpec(type_name, Path(path).expanduser(), label or Path(path).stem.replace("_", " "), mask)


@dataclass
class SingleEditResult:
    out: Path
    prompt: str
    bindings: list
    mask_fraction: float
    model: str
    verdict: Any = None  # dp_cli.edit.verify.Verdict of the kept candidate
    seed: int = 0
    preparations: list = field(default_factory=list)  # PreparedReference per attribute


def edit_single(cfg, image: Path, parsing: Path, caption: str, attributes: list[str], out: Path,
                label_set: str = "atr") -> SingleEditResult:
    """Edit one image; everything is checked before the output is written (atomically)."""
    from dp_cli.data.attributes import attribute_mask
    from dp_cli.distributed import pick_device
    from dp_cli.edit.runner import (EditInput, edit_mask, edit_verified, load_pipeline, prepared_colours,
                                     prepared_item, resolve_model)

    # 1. Check and load the inputs
    if label_set not in LABEL_SETS:
        raise UsageError(f"--label-set {label_set!r}: unknown", hint=f"use one of {', '.join(LABEL_SETS)}")
    if out.is_dir():
        raise DataError(f"--out {out} is a folder", hint=f"give the image file to write, e.g. {out / 'edited.png'}")
    if image_format(out) is None:
        raise UsageError(f"--out {out}: {out.suffix or 'no extension'} is not an image type dp can write",
                         hint="end it in .png (lossless), .jpg or .webp")
    if not caption or not caption.strip():
        raise UsageError("--caption is empty", hint="describe the person, e.g. 'A woman with black hair ...'")
    specs = [parse_attribute(a) for a in attributes]
    if len({s.type for s in specs}) != len(specs):
        raise UsageError(f"--attribute: a type is given twice ({[s.type for s in specs]})")
    from dp_cli.fsutil import check_outputs

    check_outputs({"--out": out}, {"--image": image, "--parsing": parsing,
                                   **{f"--attribute {s.type}": s.image for s in specs},
                                   **{f"--attribute {s.type} mask": s.mask for s in specs}})
    source = load_rgb(image, "--image")
    labels = load_parsing(parsing, "--parsing")
    check_labels(labels, label_set, f"--parsing {parsing}")
    if labels.shape != (source.height, source.width):
        raise DataError(f"--parsing {parsing}: size {labels.shape[1]}x{labels.shape[0]} differs from --image "
                        f"{image} ({source.width}x{source.height})", hint="the parsing map must have the image's size")
    preps = [prepared_item(s) for s in specs]
    mask = edit_mask(labels, [s.type for s in specs], label_set)
    if not mask.any():
        raise DataError(f"--parsing {parsing}: no pixels of {[s.type for s in specs]} in the {label_set} label map",
                        hint="nothing to edit: pick attributes the person has, or check --label-set")

    # 2. Load the model; edit the candidates (and retries), verify each, keep the best and write it
    model_ref = resolve_model(cfg.model)
    pipe = load_pipeline(model_ref, cfg, pick_device(cfg.device))
    types = [s.type for s in specs]
    x = EditInput(source, mask, caption, cfg.seed, types, [s.label for s in specs],
                  [attribute_mask(labels, t, label_set) for t in types], preps,
                  [prepared_colours(s) for s in specs])
    best = edit_verified(pipe, [x], cfg)[0]
    save_image_atomic(best.image, out)
    used = float((np.asarray(best.mask) > 0).mean())
    return SingleEditResult(out, best.prompt.text, best.prompt.bindings, used, model_ref, best.verdict, best.seed,
                            preps)
