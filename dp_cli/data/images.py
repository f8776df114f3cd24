"""The one image toolkit: read an RGB image or a parsing map, grow a mask, turn an image into model pixels.

Edit, train, eval, the baseline and dp_models' pipeline and reference encoder all use these, so an image
gives the same numbers wherever it is read. Resizing is bicubic for pictures (as the diffusers VAE and the
CLIP processor expect) and nearest for label maps. numpy, PIL and torch are imported where used, so that
the settings of `dp eval` can take the CLIP statistics from here and stay cheap to import.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from dp_cli.errors import DataError

if TYPE_CHECKING:
    import numpy as np
    import torch
    from PIL import Image

# The normalisation of OpenAI CLIP's image processor (RGB, 0..1).
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)

# PIL modes a parsing map may have: one channel of label ids.
LABEL_MODES = ("L", "P", "I", "I;16")


def eight_bit(im: Image.Image) -> Image.Image:
    """A 16-bit (or 32-bit integer / float) grey image as 8-bit grey, scaled (PIL's convert("RGB") clips
    such pixels at 255: a 16-bit photo turns white); other images as they are."""
    import numpy as np
    from PIL import Image

    if not (im.mode.startswith("I") or im.mode == "F"):
        return im
    arr = np.asarray(im, dtype=np.float64)
    sixteen = im.mode.startswith("I;16") or arr.max(initial=0) > 255  # I / F: 8-bit values in a wide mode?
    top = 65535.0 if sixteen else 255.0
    return Image.fromarray(np.clip(np.rint(arr * 255.0 / top), 0, 255).astype(np.uint8), "L")


def load_rgb(path: Path, what: str = "image") -> Image.Image:
    """Open and fully decode an image as RGB; DataError naming the file when missing or corrupt."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            im.load()
            return eight_bit(im).convert("RGB")
    except FileNotFoundError:
        raise DataError(f"{what} {path} not found", hint="check the path") from None
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise DataError(f"{what} {path} cannot be read ({exc})", hint="replace it with a valid PNG/JPEG") from None


def load_parsing(path: Path, what: str = "parsing map", size: tuple[int, int] | None = None) -> np.ndarray:
    """A label map (mode L, P or I) as a 2-D int64 array, resized (nearest) to `size` = (width, height) if given."""
    import numpy as np
    from PIL import Image

    try:
        with Image.open(path) as im:
            im.load()
            if im.mode not in LABEL_MODES:
                raise DataError(f"{what} {path}: mode {im.mode} is not a label map",
                                hint="parsing maps are single-channel PNGs of label ids")
            if size is not None and im.size != tuple(size):
                im = im.resize(tuple(size), Image.NEAREST)
            return np.asarray(im).astype(np.int64)
    except FileNotFoundError:
        raise DataError(f"{what} {path} not found") from None
    except OSError as exc:
        raise DataError(f"{what} {path} cannot be read ({exc})") from None


def grow_mask(mask: np.ndarray, pixels: int, shrink: bool = False) -> np.ndarray:
    """A boolean mask grown by `pixels` in every direction (a (2p+1)-square neighbourhood), or with `shrink`
    eroded by as much; the outside of the image counts as background, so a shrunk mask leaves the border.
    Separable running sums: the cost does not grow with `pixels`."""
    import numpy as np

    out = np.asarray(mask).astype(bool)
    if pixels <= 0:
        return out  # astype made a copy
    window = 2 * pixels + 1
    for _ in range(2):  # rows, then columns (the transpose of the transpose at the end)
        n = out.shape[0]
        sums = np.zeros((n + window, out.shape[1]), np.int32)  # one leading zero for the running sum
        sums[pixels + 1:pixels + 1 + n] = out
        np.cumsum(sums, axis=0, out=sums)
        count = sums[window:] - sums[:n]  # mask pixels in each pixel's window along this axis
        out = (count == window if shrink else count > 0).T
    return np.ascontiguousarray(out)


def to_vae_pixels(image: Image.Image, size_hw: tuple[int, int]) -> "torch.Tensor":
    """An image -> float32 [3, H, W] in [-1, 1] at (height, width): the VAE's input."""
    import numpy as np
    import torch
    from PIL import Image

    h, w = size_hw
    image = image.convert("RGB")
    if image.size != (w, h):
        image = image.resize((w, h), Image.BICUBIC)
    arr = np.asarray(image, dtype=np.float32) / 127.5 - 1.0
    return torch.from_numpy(arr).permute(2, 0, 1).contiguous()


def to_clip_pixels(image: Image.Image, size_hw: tuple[int, int], mean: Sequence[float] = CLIP_MEAN,
                   std: Sequence[float] = CLIP_STD) -> "torch.Tensor":
    """An image -> float32 [3, H, W] resized to (height, width), 0..1 then normalised by `mean` and `std`."""
    import numpy as np
    import torch
    from PIL import Image

    h, w = int(size_hw[0]), int(size_hw[1])
    arr = np.asarray(image.convert("RGB").resize((w, h), Image.BICUBIC), dtype=np.float32) / 255.0
    arr = (arr - np.asarray(mean, dtype=np.float32)) / np.asarray(std, dtype=np.float32)
    return torch.from_numpy(arr).permute(2, 0, 1).contiguous()
