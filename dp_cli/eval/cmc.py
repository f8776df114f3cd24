"""The CMC curve (Rank-k for every k) as a PNG figure: drawn with matplotlib when it is installed
(`pip install diverse-person[plots]`: axes, ticks and legend as in papers), else with PIL."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

COLORS = [(31, 119, 180), (214, 39, 40), (44, 160, 44), (148, 103, 189), (255, 127, 14), (23, 190, 207)]


def _x_ticks(max_rank: int) -> list[int]:
    ticks = [1] + [k for k in (5, 10, 20, 30, 40, 50, 100, 200, 500, 1000) if k <= max_rank]
    step = max(1, max_rank // 10)
    if len(ticks) < 3:
        ticks = sorted(set([1] + list(range(step, max_rank + 1, step))))
    return ticks


def draw_cmc(curves: dict[str, Sequence[float]], title: str = "CMC", size: tuple[int, int] = (640, 420)):
    """A PIL image of one or more CMC curves (values in percent for ranks 1..n)."""
    from PIL import Image, ImageDraw, ImageFont

    if not curves or not any(len(c) for c in curves.values()):
        raise ValueError("no CMC values to draw")
    w, h = size
    left, right, top, bottom = 60, 20, 36, 48
    img = Image.new("RGB", size, "white")
    d = ImageDraw.Draw(img)
    font = ImageFont.load_default()
    n = max(len(c) for c in curves.values())
    pw, ph = w - left - right, h - top - bottom

    def xy(rank: int, val: float) -> tuple[float, float]:
        x = left + (pw * (rank - 1) / (n - 1) if n > 1 else pw / 2)
        return x, top + ph * (1 - max(0.0, min(100.0, val)) / 100)

    for pct in range(0, 101, 20):  # horizontal grid and y labels
        _, y = xy(1, pct)
        d.line([(left, y), (w - right, y)], fill=(225, 225, 225))
        d.text((left - 8, y), f"{pct}%", fill="black", font=font, anchor="rm")
    for k in _x_ticks(n):
        x, _ = xy(k, 0)
        d.line([(x, top + ph), (x, top + ph + 4)], fill="black")
        d.text((x, top + ph + 6), str(k), fill="black", font=font, anchor="mt")
    d.rectangle([left, top, w - right, top + ph], outline="black")
    for i, (name, vals) in enumerate(curves.items()):
        color = COLORS[i % len(COLORS)]
        pts = [xy(r + 1, v) for r, v in enumerate(vals)]
        if len(pts) > 1:
            d.line(pts, fill=color, width=2)
        for p in pts[:1]:
            d.ellipse([p[0] - 3, p[1] - 3, p[0] + 3, p[1] + 3], fill=color)
        ly = top + ph - 14 * (len(curves) - i)  # legend bottom-left: CMC curves live near the top
        d.line([(left + 10, ly), (left + 30, ly)], fill=color, width=2)
        d.text((left + 36, ly), name, fill="black", font=font, anchor="lm")
    d.text((w / 2, 8), title, fill="black", font=font, anchor="mt")
    d.text((left + pw / 2, h - 14), "rank", fill="black", font=font, anchor="mm")
    d.text((6, top - 14), "matching rate", fill="black", font=font, anchor="lm")
    return img


def have_matplotlib() -> bool:
    """matplotlib is importable (the `plots` extra)."""
    import importlib.util

    return importlib.util.find_spec("matplotlib") is not None


def plot_cmc(curves: dict[str, Sequence[float]], title: str = "CMC", size: tuple[float, float] = (6.4, 4.2),
             dpi: int = 100):
    """A PIL image of the CMC curves rendered by matplotlib (Agg, no display needed)."""
    import io

    from matplotlib.figure import Figure
    from PIL import Image

    if not curves or not any(len(c) for c in curves.values()):
        raise ValueError("no CMC values to draw")
    fig = Figure(figsize=size, dpi=dpi)  # not pyplot: no global state, no GUI backend
    ax = fig.add_subplot()
    for name, vals in curves.items():
        ranks = list(range(1, len(vals) + 1))
        ax.plot(ranks, list(vals), label=name, linewidth=2, marker="o" if len(vals) < 12 else None)
    n = max(len(c) for c in curves.values())
    ax.set(title=title, xlabel="rank", ylabel="matching rate (%)", ylim=(0, 100), xlim=(1, max(2, n)))
    ax.set_xticks(_x_ticks(n))
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    buf.seek(0)
    with Image.open(buf) as im:
        return im.convert("RGB")


def save_cmc(path: str | Path, curves: dict[str, Sequence[float]], title: str = "CMC") -> Path:
    """Draw the curves (matplotlib when installed, else PIL) and write them atomically as a PNG."""
    from dp_cli.fsutil import save_image_atomic

    path = Path(path)
    image = plot_cmc(curves, title) if have_matplotlib() else draw_cmc(curves, title)
    save_image_atomic(image, path, format="PNG")
    return path
