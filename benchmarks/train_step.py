"""Training-step cost on the toy config, measured in one run (hand-run; prints ratios).

    .venv/bin/python benchmarks/train_step.py [--rounds 5] [--steps 4] [--threads N] [--config examples/toy/train.toml]
                                              [--resolution HxW] [--compile MODE] [--workers N] [--loader-blocks N]
    python benchmarks/train_step.py --sd15      # GPU: SD-1.5 size, the seed's settings (128, batch 32, bf16)

Builds the tiny model and a toy world at the config's resolution in a temporary folder, prepares the
real training run (`dp_cli.train.loop.setup` + `main`), then measures, interleaved in rounds so that
a busy machine hurts every variant alike (medians reported; each round loads one batch, times its
loading once and runs every variant on it, in an order that rotates from round to round):
  - bare:  UNet forward + backward on the same latents and a precomputed text embedding;
  - full:  one real training step (data loading, encoders, fusion, UNet, losses, backward, optimizer;
           the batch's loading time is added to each variant's step);
  - noloc: the same step with the localization loss off.
Targets: full / bare <= 1.3; localization overhead (full / noloc - 1) <= 10%. Also printed: samples/s
and the hours 30,000 steps (a CUHK-PEDES run, the seed's schedule) would take at the measured full step.
--loader-blocks N also times whole epochs of real steps (loader wait included) with no DataLoader worker, one
started per epoch and one persistent worker, and as many bare UNet steps back to back, in N rotating blocks
each: training's steady state against the bare UNet's (end to end / bare), and whether a worker pays (with
a worker the interleaved ratio reads low, because the worker slows the bare step too).
--compile MODE sets [train] compile (the UNet and encoders through torch.compile; the bare step then runs
the compiled UNet too, and the warm-up, which compiles, is reported apart).

With --sd15 the model is SD-1.5 / CLIP ViT-L/14 with random weights (benchmarks/sd15.py) and the
settings are `dp train`'s defaults, which are the seed's (resolution 128, batch 32, 5 localization
layers, image encoder's last 2 layers trained), in bf16 mixed precision; --batch/--precision override.
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


def build_run(config: Path | None, work: Path, persons: int, overrides: dict, sd15: bool = False):
    """The config (dp train's defaults when None) with `overrides`, its model and dataset replaced by fresh ones."""
    from dp_cli.config import load_project, resolve_section
    from dp_cli.toy.world import generate_world
    from dp_cli.train import loop
    from dp_cli.train.config import TrainConfig
    from dp_models.tiny import write_tiny_pretrained

    cfg = resolve_section(TrainConfig, "train", load_project(config, explicit=True)) if config else TrainConfig()
    cfg = TrainConfig.model_validate({**cfg.model_dump(), **overrides})
    h, w = cfg.size
    if sd15:
        from sd15 import write_sd15_random

        write_sd15_random(work / "base")
    else:
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


def full_step(run, batch: dict, counter: int, loc: bool) -> float:
    """Seconds of one training step on `batch` (its loading is timed apart, see `measure`)."""
    from dp_cli.train.loop import micro_step

    run.cfg = run.cfg.model_copy(update={"attribute_loc": loc})
    sync()
    t = time.perf_counter()
    micro_step(run, dict(batch), counter)  # a shallow copy: micro_step pops keys of its batch
    sync()
    return time.perf_counter() - t


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
    if run.model.attention_store is not None:  # the bare UNet captures nothing
        run.model.attention_store.set_token_positions(None)
    sync()
    start = time.perf_counter()
    with run.accelerator.autocast():
        pred = unet(noisy, t, encoder_hidden_states=context).sample
        loss = torch.nn.functional.mse_loss(pred.float(), noise.float())
    loss.backward()
    sync()
    elapsed = time.perf_counter() - start
    if getattr(run, "grads", None) is not None:  # keep the run's one gradient buffer (set_to_none replaces it)
        run.grads.zero_()
    else:
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


PROJECTED_STEPS = 30_000  # a CUHK-PEDES run (the seed's max_train_steps)


def measure(run, rounds: int, steps: int) -> dict:
    it = batches(run)
    variants = [("full", True), ("noloc", False)]
    warm = time.perf_counter()
    for counter, (_, loc) in enumerate(variants + variants[:1]):  # warm-up: allocations, capture install, compiling
        full_step(run, next(it), counter, loc)
    inputs = bare_inputs(run, it)
    bare_step(run, inputs)
    bare_step(run, inputs)
    warm = time.perf_counter() - warm
    times: dict[str, list[float]] = {"bare": [], "load": [], **{name: [] for name, _ in variants}}
    for r in range(rounds * steps):
        # every variant runs the same batch with the same draws (noise, timesteps, mask coin), in an order
        # that rotates each round: batch content, epoch starts and load changes hit all of them alike
        batch, load = load_batch(it)
        times["load"].append(load)
        times["bare"].append(bare_step(run, inputs))
        for k in range(len(variants)):
            name, loc = variants[(r + k) % len(variants)]
            times[name].append(load + full_step(run, batch, 10 + r, loc))
    med = {k: statistics.median(v) for k, v in times.items()}
    batch = run.cfg.train_batch_size
    out = {"config": {"resolution": run.cfg.resolution, "batch": batch, "device": str(run.accelerator.device),
                      "threads": torch.get_num_threads(), "mixed_precision": run.cfg.mixed_precision,
                      "latent_cache": bool(run.latent_cache), "workers": run.loader.num_workers,
                      "compile": run.cfg.compile},
           "warm_up_s": round(warm, 1),
           "median_s": {k: round(v, 4) for k, v in med.items()},
           "full_over_bare": round(med["full"] / med["bare"], 3),
           "loc_overhead": round(med["full"] / med["noloc"] - 1, 3),
           "samples_per_s": round(batch / med["full"], 2),
           "projected_hours_30k_steps": round(PROJECTED_STEPS * med["full"] / 3600, 2),
           **{k: round(v, 1) for k, v in peak_memory_mib().items()}}
    return out


def profile(run, steps: int = 2) -> None:
    """torch.profiler tables (top operators by device and by host time) of full steps with and without loc."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    it = batches(run)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if torch.cuda.is_available() else [])
    for loc in (True, False):
        batch = next(it)
        full_step(run, batch, 900, loc)
        with torch_profile(activities=activities) as prof:
            for k in range(steps):
                full_step(run, batch, 901 + k, loc)
        key = "self_cuda_time_total" if torch.cuda.is_available() else "self_cpu_time_total"
        print(f"--- profile, {steps} full steps, localization loss {'on' if loc else 'off'} (sorted by {key})")
        print(prof.key_averages().table(sort_by=key, row_limit=15, max_name_column_width=48))


def loader_end_to_end(run, blocks: int) -> dict:
    """Seconds per real step (loader wait + step over whole epochs) with no DataLoader worker, one started
    per epoch, and one persistent worker (started once, as `dp train` runs it), and per bare UNet step in a
    block of as many back-to-back steps, in rotating blocks: the steady state of training against that of
    the bare UNet (a step right after a different one runs on colder caches: the interleaved figures above
    read both slower), and what a worker saves or costs beside the step it competes with."""
    from dp_cli.train.loop import micro_step

    def loader(workers: int, persistent: bool):
        return torch.utils.data.DataLoader(run.data, batch_size=run.cfg.train_batch_size, shuffle=True,
                                           num_workers=workers, drop_last=True, persistent_workers=persistent)

    loaders = {"0": loader(0, False), "1": loader(1, False), "1_persistent": loader(1, True)}
    inputs = bare_inputs(run, batches(run))
    per_epoch = len(loaders["0"])
    times: dict[str, list[float]] = {k: [] for k in [*loaders, "bare"]}
    names = list(times)
    for block in range(blocks):
        for name in names[block % len(names):] + names[:block % len(names)]:
            if name == "bare":
                times[name].append(statistics.mean(bare_step(run, inputs) for _ in range(per_epoch)))
                continue
            start, n = time.perf_counter(), 0
            for batch in loaders[name]:  # one epoch
                micro_step(run, batch, 1000 + n)
                n += 1
            times[name].append((time.perf_counter() - start) / n)
    med = {k: statistics.median(v) for k, v in times.items()}
    out = {f"end_to_end_s_per_step_workers_{k}": round(med[k], 4) for k in loaders}
    out["end_to_end_bare_s"] = round(med["bare"], 4)
    out.update({f"end_to_end_over_bare_workers_{k}": round(med[k] / med["bare"], 3) for k in loaders})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=ROOT / "examples" / "toy" / "train.toml")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=4, help="steps per variant per round (interleaved)")
    parser.add_argument("--persons", type=int, default=40)
    parser.add_argument("--resolution", default=None, help="override the config's resolution, e.g. 128x64")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--sd15", action="store_true",
                        help="SD-1.5 size with dp train's default settings, bf16 (meant for a GPU)")
    parser.add_argument("--batch", type=int, default=None, help="override the batch size")
    parser.add_argument("--workers", type=int, default=None, help="override dataloader_num_workers")
    parser.add_argument("--profile", action="store_true",
                        help="also print torch.profiler's top operators of 2 full steps with and without loc")
    parser.add_argument("--loader-blocks", type=int, default=0,
                        help="also time whole epochs of real steps with 0 and 1 DataLoader worker, N blocks each")
    parser.add_argument("--precision", choices=["no", "fp16", "bf16"], default=None,
                        help="override mixed precision (--sd15 default: bf16)")
    parser.add_argument("--compile", default=None, help="override [train] compile (none, default, reduce-overhead, "
                                                       "max-autotune)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    import diffusers
    import transformers

    for lib in (diffusers, transformers):
        lib.utils.logging.set_verbosity_error()
        lib.utils.logging.disable_progress_bar()
    with tempfile.TemporaryDirectory(prefix="dp-bench-") as tmp:
        overrides = {k: v for k, v in {"resolution": args.resolution, "train_batch_size": args.batch,
                                        "mixed_precision": args.precision or ("bf16" if args.sd15 else None),
                                        "dataloader_num_workers": args.workers, "compile": args.compile}.items()
                     if v is not None}
        if args.sd15 and not torch.cuda.is_available():
            print("note: --sd15 without a GPU runs on the CPU (slow; use a small --batch for a smoke test)",
                  file=sys.stderr)
        config = None if args.sd15 else args.config
        persons = max(args.persons, args.batch or 0, 32 if args.sd15 else 0)
        run = build_run(config, Path(tmp), persons, overrides, sd15=args.sd15)
        result = measure(run, args.rounds, args.steps)
        if args.loader_blocks:
            result.update(loader_end_to_end(run, args.loader_blocks))
        if args.profile:
            profile(run)
    print(json.dumps(result, indent=2))
    print(f"full step / bare UNet fwd+bwd: {result['full_over_bare']:.2f} (target <= 1.3)")
    print(f"localization loss overhead:    {100 * result['loc_overhead']:.1f}% (target <= 10%)")
    print(f"samples/s: {result['samples_per_s']}, peak host RSS: {result['host_peak_rss_mib']:.0f} MiB")
    print(f"{PROJECTED_STEPS:,} steps at batch {result['config']['batch']} per process: "
          f"{result['projected_hours_30k_steps']:.1f} h (warm-up {result['warm_up_s']} s)")
    if "end_to_end_s_per_step_workers_0" in result:
        print(f"end to end, s per step: {result['end_to_end_s_per_step_workers_0']} without a DataLoader worker, "
              f"{result['end_to_end_s_per_step_workers_1']} with one started per epoch, "
              f"{result['end_to_end_s_per_step_workers_1_persistent']} with one persistent worker; bare UNet "
              f"{result['end_to_end_bare_s']}, back to back")
        print(f"end to end / bare UNet (target <= 1.3): {result['end_to_end_over_bare_workers_0']} without a worker, "
              f"{result['end_to_end_over_bare_workers_1_persistent']} with one persistent worker")


if __name__ == "__main__":
    main()
