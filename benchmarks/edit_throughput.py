"""Throughput of the editing pipeline on the toy config (and at SD-1.5 size when a GPU is at hand).

Prints, measured in one run: images/s at batch 1 and at batch 8; the full edit time (prompt and
reference encoding, VAE encode/decode, masks, compositing) over the bare denoising loop (the UNet
calls x steps with classifier-free guidance) at the same batch (target <= 1.15); the hours 100,000
edits (three variants per CUHK-PEDES person) would take at that rate. Every call gets new reference
pictures, shared by groups of 3 images (CUHK-PEDES has about 3 images per person, and a variant's
references are encoded once for all its images), so the reference cache helps only as much as it would
in a real run.

    .venv/bin/python benchmarks/edit_throughput.py [--model DIR] [--steps 25] [--repeats 3] [--compile MODE]
    .venv/bin/python benchmarks/edit_throughput.py --sd15    # GPU: SD-1.5-size random weights, 256x128, fp16
    .venv/bin/python benchmarks/edit_throughput.py --end-to-end 20   # also a whole dp edit run (host work included)

Without --model: the shipped toy model (dp_cli/assets/toy-model) if present, else a tiny random model
at 128x64 built from configs in code (the timings do not depend on the weights).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from dp_models.edit_pipeline import DPEditPipeline, Reference, make_scheduler  # noqa: E402

CAPTION = "A woman with long black hair is wearing a red shirt, blue jeans and black shoes."


def tiny_model(folder: Path, height: int, width: int) -> str:
    from dp_models.dp_model import DPConfig, DPModel
    from dp_models.tiny import write_tiny_pretrained

    parts = write_tiny_pretrained(folder / "parts", height=height, width=width)
    model = DPModel.from_pretrained_parts(str(parts / "sd"), str(parts / "clip-vision"),
                                          DPConfig(resolution=(height, width)))
    return str(model.save_pretrained(folder / "model"))


def sd15_model(height: int, width: int):
    """SD-1.5 / CLIP ViT-L/14 architectures with random weights (no download needed; benchmarks/sd15.py)."""
    from dp_models.dp_model import DPConfig, DPModel
    from dp_models.fusion import FusionModule
    from dp_models.image_encoder import ReferenceImageEncoder
    from sd15 import sd15_parts

    unet, vae, text, tok, sched, vision, _ = sd15_parts()
    return DPModel(unet, vae, text, tok, sched, ReferenceImageEncoder(vision, trainable_layers=0),
                   FusionModule(768, 768), DPConfig(resolution=(height, width)))


IMAGES_PER_VARIANT = 3  # CUHK-PEDES: 40,206 images of 13,003 persons
PROJECTED_EDITS = 100_000  # three variants per CUHK-PEDES person
CALLS = iter(range(10**9))  # each call's references are new pictures


def inputs(n: int, height: int, width: int):
    rng = np.random.default_rng(0)
    images = [Image.fromarray(rng.integers(0, 255, (height, width, 3), dtype=np.uint8)) for _ in range(n)]
    mask = np.zeros((height, width), bool)
    mask[height // 2:, :] = True
    call = next(CALLS)
    variants = [[Reference("bottomcloth", Image.new("RGB", (64, 64), (240, call % 256, v)), "white skirt"),
                 Reference("hair", Image.new("RGB", (64, 64), (212, call // 256 % 256, v)), "gold hair")]
                for v in range(-(-n // IMAGES_PER_VARIANT))]
    return images, [mask] * n, [CAPTION] * n, [variants[i // IMAGES_PER_VARIANT] for i in range(n)]


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def time_full(pipe, batch: int, steps: int) -> float:
    """One full edit of a batch: prompts, references, VAE, masks, the loop, decoding, compositing."""
    images, masks, caps, refs = inputs(batch, *pipe.resolution)
    sync(pipe.device)
    t = time.perf_counter()
    pipe(images, masks, caps, refs, seed=list(range(batch)), num_inference_steps=steps)
    sync(pipe.device)
    return time.perf_counter() - t


@torch.no_grad()
def time_bare_loop(pipe, batch: int, steps: int, guidance: float = 5.0) -> float:
    """Only the UNet calls of the denoising loop (with CFG) and the scheduler steps."""
    h, w = pipe.resolution
    f = pipe.model.vae_scale_factor
    c = pipe.model.unet.config.in_channels
    latents = torch.randn(batch, c, h // f, w // f, device=pipe.device, dtype=pipe.dtype)
    ids = pipe.model.tokenizer([CAPTION] * batch, padding="max_length", return_tensors="pt").input_ids
    emb = pipe.model.encode_prompt(ids.to(pipe.device))
    sync(pipe.device)
    t = time.perf_counter()
    pipe.scheduler.set_timesteps(steps, device=pipe.device)
    x = latents
    for ts in pipe.scheduler.timesteps:
        eps = pipe.unet_cfg(x, ts, emb, emb, guidance)
        x = pipe.scheduler.step(eps, ts, x, return_dict=False)[0]
    sync(pipe.device)
    return time.perf_counter() - t


def measure(pipe, batch: int, steps: int, repeats: int) -> tuple[float, float]:
    """Best of `repeats` for both, interleaved so that load changes on a shared machine hit both alike."""
    time_full(pipe, batch, 2), time_bare_loop(pipe, batch, 2)  # warm-up
    full, bare = float("inf"), float("inf")
    for _ in range(repeats):
        full = min(full, time_full(pipe, batch, steps))
        bare = min(bare, time_bare_loop(pipe, batch, steps))
    return full, bare


def report(pipe, steps: int, repeats: int, label: str, batches=(1, 8)) -> None:
    print(f"{label}: resolution {pipe.resolution[0]}x{pipe.resolution[1]}, {steps} steps, CFG, "
          f"{str(pipe.dtype).replace('torch.', '')} on {pipe.device}")
    for batch in batches:
        full, bare = measure(pipe, batch, steps, repeats)
        print(f"  batch {batch}: {batch / full:8.2f} images/s   full edit / bare denoising loop = "
              f"{full / bare:.3f} (target <= 1.15)   [{full * 1000:.0f} ms vs {bare * 1000:.0f} ms]   "
              f"{PROJECTED_EDITS:,} edits: {PROJECTED_EDITS * full / batch / 3600:.1f} h")


class TimedPipe:
    """The pipeline with its calls timed (device synchronised), for `end_to_end`."""

    def __init__(self, pipe):
        self.pipe, self.seconds = pipe, 0.0

    def __getattr__(self, name):
        return getattr(self.pipe, name)

    def __call__(self, *args, **kwargs):
        sync(self.pipe.device)
        t = time.perf_counter()
        out = self.pipe(*args, **kwargs)
        sync(self.pipe.device)
        self.seconds += time.perf_counter() - t
        return out


def end_to_end(pipe, batch: int, steps: int, persons: int, label: str) -> None:
    """A whole `dp edit` run (run_dataset_edit: loading, reference preparation, verifying, writing images,
    masks and fsynced manifest lines) on a fresh toy world at the pipeline's resolution, with this pipeline:
    its images/s against those of its pipeline calls alone (the host work the run adds)."""
    from dp_cli.distributed import process_state
    from dp_cli.edit import runner
    from dp_cli.edit.config import EditConfig
    from dp_cli.toy.world import generate_world

    h, w = pipe.resolution
    with tempfile.TemporaryDirectory() as tmp:
        generate_world(Path(tmp) / "world", persons=persons, seed=3, height=h, width=w)
        cfg = EditConfig(dataset=Path(tmp) / "world", catalog=Path(tmp) / "world" / "catalog",
                         output_dir=Path(tmp) / "out", batch_size=batch, steps=steps, device=str(pipe.device))
        dataset, jobs = runner.plan_dataset_edit(cfg)
        timed = TimedPipe(pipe)
        summary = runner.run_dataset_edit(cfg, prepared=runner.PreparedEdit(
            cfg, dataset, jobs, label, timed, process_state(cfg.device)))
    run, calls = summary.written / summary.seconds, summary.written / timed.seconds
    print(f"  dp edit end to end, batch {batch}, {summary.written} images: {run:.2f} images/s; its pipeline calls "
          f"alone {calls:.2f} images/s; run / pipeline time = {calls / run:.3f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", help="model folder (default: shipped toy model, else a tiny random one)")
    ap.add_argument("--steps", type=int, default=25)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    ap.add_argument("--sd15", action="store_true", help="also SD-1.5 size at 256x128 fp16 (needs a GPU)")
    ap.add_argument("--sd15-only", action="store_true", help="only the SD-1.5 size (with --sd15)")
    ap.add_argument("--batches", type=int, nargs="+", default=None,
                    help="batch sizes (default: 1 8 for the toy model, 1 8 16 at SD-1.5 size)")
    ap.add_argument("--compile", default="none", help="torch.compile mode of the UNet and encoders (warm-up compiles)")
    ap.add_argument("--end-to-end", type=int, default=0, metavar="PERSONS",
                    help="also a whole dp edit run on a toy world of PERSONS persons at the largest batch: its "
                         "images/s against its pipeline calls' (loading, verifying and writing included)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    toy = REPO / "dp_cli" / "assets" / "toy-model"
    compiled = f", compile {args.compile}" if args.compile != "none" else ""
    if not args.sd15_only:
        with tempfile.TemporaryDirectory() as tmp:
            ref = args.model or (str(toy) if toy.is_dir() else tiny_model(Path(tmp), 128, 64))
            pipe = DPEditPipeline.from_pretrained(ref, scheduler="ddim", device=device, compile=args.compile)
            report(pipe, args.steps, args.repeats, f"toy config ({'given' if args.model else Path(ref).name}"
                   f"{compiled})", batches=args.batches or (1, 8))
            if args.end_to_end:
                end_to_end(pipe, max(args.batches or (1, 8)), args.steps, args.end_to_end, ref)
    if args.sd15:
        if device != "cuda":
            print("SD-1.5 size: skipped (no GPU here)")
            return
        model = sd15_model(256, 128).eval().requires_grad_(False)
        pipe = DPEditPipeline(model, make_scheduler("ddim", model.noise_scheduler.config), device=device,
                              precision="fp16")
        model.compile_parts(args.compile)
        report(pipe, 25, args.repeats, f"SD-1.5 size (random weights{compiled})", batches=args.batches or (1, 8, 16))
        if args.end_to_end:
            end_to_end(pipe, max(args.batches or (1, 8, 16)), 25, args.end_to_end, "sd15-random")


if __name__ == "__main__":
    main()
