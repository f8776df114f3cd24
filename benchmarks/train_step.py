"""Training-step cost on the toy config, measured in one run (hand-run; prints ratios).

    .venv/bin/python benchmarks/train_step.py [--rounds 5] [--steps 4] [--threads N] [--config examples/toy/train.toml]
                                              [--resolution HxW] [--recompute]

Builds the tiny model and a toy world at the config's resolution in a temporary folder, prepares the
real training run (`dp_cli.train.loop.setup` + `main`), then measures, interleaved in rounds so that
a busy machine hurts every variant alike (medians reported; each round loads one batch, times its
loading once and runs every variant on it, in an order that rotates from round to round):
  - bare:  UNet forward + backward on the same latents and a precomputed text embedding;
  - full:  one real training step (data loading, encoders, fusion, UNet, losses, backward, optimizer;
           the batch's loading time is added to each variant's step);
  - noloc: the same step with the localization loss off;
  - recompute (with --recompute): the full step with the capture's fp32 recomputation of the flagged
    probabilities (Q.K^T + logsumexp; the path autocast/half precision take, and the only one before
    the one-call capture), to compare both capture paths within one run.
Targets: full / bare <= 1.3; localization overhead (full / noloc - 1) <= 10%.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def build_run(config: Path, work: Path, persons: int, resolution: str | None = None):
    """The toy config (at `resolution` when given) with its model and dataset replaced by fresh ones in `work`."""
    from dp_cli.config import load_project, resolve_section
    from dp_cli.toy.world import generate_world
    from dp_cli.train import loop
    from dp_cli.train.config import TrainConfig
    from models.tiny import write_tiny_pretrained

    cfg = resolve_section(TrainConfig, "train", load_project(config, explicit=True))
    if resolution is not None:
        cfg = TrainConfig.model_validate({**cfg.model_dump(), "resolution": resolution})
    h, w = cfg.size
    write_tiny_pretrained(work / "base", height=h, width=w)
    generate_world(work / "world", persons=persons, seed=0, height=h, width=w, catalog_per_type=0)
    cfg = cfg.model_copy(update={"pretrained_model": str(work / "base" / "sd"),
                                 "image_encoder": str(work / "base" / "clip-vision"), "dataset": work / "world",
                                 "output_dir": work / "run", "checkpointing_steps": 10**9,
                                 "max_train_steps": 10**6, "report_to": "none", "resume_from_checkpoint": None})
    run = loop.setup(cfg)
    loop.main(run, lambda m: print(m, file=sys.stderr))
    return run


def batches(run):
    """Endless batches from the run's own loader."""
    epoch = 0
    while True:
        run.data.set_epoch(epoch)
        run.loader.set_epoch(epoch)
        yield from run.loader
        epoch += 1


def full_step(run, batch: dict, counter: int, loc: bool, recompute: bool = False) -> float:
    """Seconds of one training step on `batch` (its loading is timed apart, see `measure`)."""
    import models.attention_capture as capture
    from dp_cli.train.loop import micro_step

    run.cfg = run.cfg.model_copy(update={"attribute_loc": loc})
    one_call = capture._full_precision
    if recompute:  # benchmark-only switch: take the fp32 recomputation path in full precision too
        capture._full_precision = lambda query: False
    try:
        sync()
        t = time.perf_counter()
        micro_step(run, dict(batch), counter)  # a shallow copy: micro_step pops keys of its batch
        sync()
        return time.perf_counter() - t
    finally:
        capture._full_precision = one_call


def load_batch(it) -> tuple[dict, float]:
    t = time.perf_counter()
    batch = next(it)
    return batch, time.perf_counter() - t


def bare_inputs(run, it):
    """Latents, noise, timesteps and a detached text embedding of one batch."""
    model, dev = run.model, run.accelerator.device
    batch = next(it)
    with torch.no_grad():
        if "latent_dist" in batch:
            latents = batch["latent_dist"].chunk(2, dim=1)[0].to(dev)
        else:
            latents = model.vae_latents(batch["pixel_values"].to(dev))
        latents = latents * model.vae.config.scaling_factor
        context = model.text_encoder(batch["input_ids"].to(dev))[0]
    noise = torch.randn_like(latents)
    t = torch.randint(0, 1000, (latents.shape[0],), device=dev)
    return model.noise_scheduler.add_noise(latents, noise, t), noise, t, context


def bare_step(run, inputs) -> float:
    noisy, noise, t, context = inputs
    unet = run.model.unet
    sync()
    start = time.perf_counter()
    with run.accelerator.autocast():
        pred = unet(noisy, t, encoder_hidden_states=context).sample
        loss = torch.nn.functional.mse_loss(pred.float(), noise.float())
    loss.backward()
    sync()
    elapsed = time.perf_counter() - start
    unet.zero_grad(set_to_none=True)
    return elapsed


def sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def peak_memory_mib() -> dict:
    out = {"host_peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    if torch.cuda.is_available():
        out["gpu_peak_allocated_mib"] = torch.cuda.max_memory_allocated() / 2**20
    return out


def measure(run, rounds: int, steps: int, recompute: bool = False) -> dict:
    it = batches(run)
    variants = [("full", True, False), ("noloc", False, False)] + ([("recompute", True, True)] if recompute else [])
    for counter, (_, loc, rec) in enumerate(variants + variants[:1]):  # warm-up: allocations, capture install
        full_step(run, next(it), counter, loc, rec)
    inputs = bare_inputs(run, it)
    bare_step(run, inputs)
    times: dict[str, list[float]] = {"bare": [], "load": [], **{name: [] for name, _, _ in variants}}
    for r in range(rounds * steps):
        # every variant runs the same batch with the same draws (noise, timesteps, mask coin), in an order
        # that rotates each round: batch content, epoch starts and load changes hit all of them alike
        batch, load = load_batch(it)
        times["load"].append(load)
        times["bare"].append(bare_step(run, inputs))
        for k in range(len(variants)):
            name, loc, rec = variants[(r + k) % len(variants)]
            times[name].append(load + full_step(run, batch, 10 + r, loc, rec))
    med = {k: statistics.median(v) for k, v in times.items()}
    batch = run.cfg.train_batch_size
    out = {"config": {"resolution": run.cfg.resolution, "batch": batch, "device": str(run.accelerator.device),
                      "threads": torch.get_num_threads(), "mixed_precision": run.cfg.mixed_precision,
                      "latent_cache": bool(run.latent_cache), "workers": run.cfg.dataloader_num_workers},
           "median_s": {k: round(v, 4) for k, v in med.items()},
           "full_over_bare": round(med["full"] / med["bare"], 3),
           "loc_overhead": round(med["full"] / med["noloc"] - 1, 3),
           "samples_per_s": round(batch / med["full"], 2),
           **{k: round(v, 1) for k, v in peak_memory_mib().items()}}
    if recompute:
        out["recompute_loc_overhead"] = round(med["recompute"] / med["noloc"] - 1, 3)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=ROOT / "examples" / "toy" / "train.toml")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=4, help="steps per variant per round (interleaved)")
    parser.add_argument("--persons", type=int, default=40)
    parser.add_argument("--resolution", default=None, help="override the config's resolution, e.g. 128x64")
    parser.add_argument("--recompute", action="store_true",
                        help="also time the full step with the capture's fp32 recomputation path")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    import diffusers
    import transformers

    for lib in (diffusers, transformers):
        lib.utils.logging.set_verbosity_error()
        lib.utils.logging.disable_progress_bar()
    with tempfile.TemporaryDirectory(prefix="dp-bench-") as tmp:
        run = build_run(args.config, Path(tmp), args.persons, args.resolution)
        result = measure(run, args.rounds, args.steps, args.recompute)
    print(json.dumps(result, indent=2))
    print(f"full step / bare UNet fwd+bwd: {result['full_over_bare']:.2f} (target <= 1.3)")
    print(f"localization loss overhead:    {100 * result['loc_overhead']:.1f}% (target <= 10%)")
    if args.recompute:
        print(f"  with the fp32 recomputation: {100 * result['recompute_loc_overhead']:.1f}%")
    print(f"samples/s: {result['samples_per_s']}, peak host RSS: {result['host_peak_rss_mib']:.0f} MiB")


if __name__ == "__main__":
    main()
