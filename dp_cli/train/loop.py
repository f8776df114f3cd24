"""`dp train`: setup (validate, accelerator) -> main (model, data, optimizer, resume) -> fit (the loop).

Works the same on one CPU, one GPU, and many processes under `accelerate launch` or `torchrun`.
The noise, timesteps and mask-loss draws of each micro-batch come from a generator seeded with
(seed, micro-batch number, rank), and the data order from accelerate's seedable sampler, so a resumed
run repeats the uninterrupted run's steps exactly.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

from dp_cli.data.loading import load_dataset
from dp_cli.distributed import make_accelerator
from dp_cli.errors import ConfigError, TrainingError
from dp_cli.fsutil import replace_dir, usual_modes
from dp_cli.train.checkpoints import (RunState, list_checkpoints, read_settings, read_state, resolve_resume,
                                      save_checkpoint)
from dp_cli.train.config import TrainConfig
from dp_cli.train.grads import FlatGrads

FINAL_MODEL_DIR = "model"
LINKING_ALIASES = {"control": "postfuse"}  # the seed's command line spells FastComposer's post-fusion "control"
LOG_FILE = "train_log.jsonl"


@dataclass
class StepEvent:
    """What the progress bar shows after each optimizer step."""

    step: int
    total: int
    loss: float
    denoise: float
    loc: float
    lr: float
    samples_per_s: float


@dataclass
class TrainResult:
    """The summary of a run."""

    output_dir: Path
    model_dir: Path | None
    steps: int
    total_steps: int
    epochs: int
    samples: int
    last_loss: float | None
    mean_loss: float | None
    samples_per_s: float
    wall_s: float
    images: int
    skipped_files: int
    without_parsing: int
    checkpoints: list[str]
    resumed_from: str | None
    latent_cache: str | None
    processes: int
    device: str


@dataclass
class Run:
    """Everything `main` builds and `fit` uses."""

    cfg: TrainConfig
    accelerator: Any
    model: Any = None
    module: Any = None
    optimizer: Any = None
    scheduler: Any = None
    loader: Any = None
    data: Any = None
    scan: Any = None
    state: RunState = field(default_factory=RunState)
    total_steps: int = 0
    resumed_from: Path | None = None
    latent_cache: Path | None = None
    trackers: bool = False
    trainable: list = field(default_factory=list)  # the prepared module's trained parameters (clipped each step)
    grads: Any = None  # FlatGrads: their gradients as views of one buffer, where the setup allows it
    data_fingerprint: str = ""  # the split's records (records_fingerprint), saved in checkpoints
    skipped_ids: set = field(default_factory=set)  # records found unreadable while training (this process)


class TrainingModule(torch.nn.Module):
    """Makes `DPModel.training_losses` the forward pass, so DDP sees it and syncs the gradients."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model
        self.keep_all_in_graph = True  # False where no DDP syncs and every gradient is a zeroed view anyway

    def forward(self, batch: dict, generator: torch.Generator, loc: bool, mask_loss: bool) -> dict:
        return self.model.training_losses(batch, loc=loc, mask_loss=mask_loss, generator=generator,
                                          keep_all_in_graph=self.keep_all_in_graph)


def train(cfg: TrainConfig, on_step: Callable[[StepEvent], None] | None = None,
          on_info: Callable[[str], None] | None = None) -> TrainResult:
    """Train a DP model as `cfg` says; returns the run's summary (on every process)."""
    run = setup(cfg)
    main(run, on_info or (lambda _m: None))
    return fit(run, on_step or (lambda _e: None))


# ---------------------------------------------------------------------------------------------- setup
def setup(cfg: TrainConfig):
    """Check what can be checked without models, then build the accelerator."""
    from accelerate import DataLoaderConfiguration
    from accelerate.utils import ProjectConfiguration, set_seed

    problems = []
    if cfg.dataset is None:
        problems.append("dataset: not set (pass --dataset or set [train] dataset)")
    if cfg.mixed_precision == "fp16" and not torch.cuda.is_available():
        problems.append("mixed_precision: fp16 needs a GPU; on CPU use 'bf16' or 'no'")
    problems += _tracker_problems(cfg.report_to)
    if problems:
        raise ConfigError("invalid [train] settings", problems)
    log_with = None if cfg.report_to == "none" else cfg.report_to
    _reset_accelerate_state()
    accelerator = make_accelerator(
        gradient_accumulation_steps=cfg.gradient_accumulation_steps,
        mixed_precision=cfg.mixed_precision, log_with=log_with,
        project_config=ProjectConfiguration(project_dir=str(cfg.output_dir), logging_dir=str(cfg.logging_path)),
        # pinned batches go to the GPU without the host waiting for the copy (accelerate's non_blocking)
        dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True, data_seed=cfg.seed,
                                                  non_blocking=cfg.pin_memory and torch.cuda.is_available()))
    set_seed(cfg.seed)
    return Run(cfg, accelerator)


def _reset_accelerate_state() -> None:
    """Let one process train twice (tests, benchmarks); the process group itself is kept."""
    from accelerate.state import AcceleratorState, GradientState

    AcceleratorState._reset_state(reset_partial_state=False)
    GradientState._reset_state()


def _tracker_problems(report_to: str) -> list[str]:
    import importlib.util

    wanted = {"none": [], "all": ["tensorboard", "wandb"]}.get(report_to, [report_to])
    missing = []
    for name in wanted:
        modules = ("tensorboard", "tensorboardX") if name == "tensorboard" else ("wandb",)
        if not any(importlib.util.find_spec(m) for m in modules):
            missing.append(f"report_to: {name} is not installed (pip install {name}, or use report_to = 'none')")
    return missing


# ----------------------------------------------------------------------------------------------- main
def main(run: Run, on_info: Callable[[str], None]) -> None:
    """Load the model and the data, build optimizer and schedule, prepare them, resume if asked."""
    cfg, acc = run.cfg, run.accelerator
    run.resumed_from = resolve_resume(cfg.resume_from_checkpoint, cfg.output_dir)  # a bad path fails first
    _refuse_to_restart_over(cfg, run.resumed_from)
    dataset = load_dataset(cfg.dataset, hint="check --dataset, or build one with `dp toy`")
    run.data_fingerprint = records_fingerprint(dataset.split(cfg.split))
    if run.resumed_from is not None:  # before the model loads and the latents are cached
        for note in check_resume_settings(run, run.resumed_from):
            on_info(note)
    # 1. Model (--load-model: the trained weights, unless a checkpoint of this run replaces them below)
    run.model = load_model(cfg)
    if cfg.load_model is not None:
        load_trained_weights(run.model, cfg.load_model, check_only=run.resumed_from is not None)
        if run.resumed_from is None:
            on_info(f"starting from the weights of {cfg.load_model} (step 0, fresh optimizer)")
    configure_model(cfg, run.model)
    # 2. Data
    build_data(run, on_info, dataset)
    # 3. Optimizer and learning-rate schedule
    run.module = TrainingModule(run.model)
    run.optimizer = build_optimizer(cfg, run.model, acc.num_processes)
    batches_per_epoch = math.ceil(len(run.data) / (cfg.train_batch_size * acc.num_processes))
    updates_per_epoch = math.ceil(batches_per_epoch / cfg.gradient_accumulation_steps)
    run.total_steps = min(cfg.max_train_steps, (cfg.num_train_epochs or math.inf) * updates_per_epoch)
    from diffusers.optimization import get_scheduler

    # accelerate steps a prepared scheduler once per process on each optimizer step
    run.scheduler = get_scheduler(cfg.lr_scheduler, run.optimizer,
                                  num_warmup_steps=cfg.lr_warmup_steps * acc.num_processes,
                                  num_training_steps=run.total_steps * acc.num_processes)
    # 4. Prepare for the processes at hand
    run.module, run.optimizer, run.loader, run.scheduler = acc.prepare(
        run.module, run.optimizer, run.loader, run.scheduler)
    run.trainable = [p for p in run.module.parameters() if p.requires_grad]
    run.grads = flat_grads(acc, run.trainable)
    # one process with one gradient buffer: a parameter that a batch leaves out keeps a zero gradient, which
    # is what the model's zero term gives it; DDP still needs the term (every parameter in the graph)
    acc.unwrap_model(run.module).keep_all_in_graph = acc.num_processes > 1 or run.grads is None
    # 5. Resume
    if cfg.resume_from_checkpoint == "latest" and run.resumed_from is None:
        on_info(f"no checkpoint in {cfg.output_dir} yet: starting from step 0")
    if run.resumed_from is not None:
        run.state = read_state(run.resumed_from)
        if run.state.global_step > run.total_steps:
            raise ConfigError(f"{run.resumed_from} is at step {run.state.global_step}, past this run's "
                              f"{run.total_steps} steps: nothing to train", hint="raise --max-train-steps "
                              "(or --num-train-epochs) to train on from it")
        try:
            acc.load_state(str(run.resumed_from))
        except RuntimeError as exc:  # weights of other shapes: another model than the checkpoint's
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise ConfigError(f"{run.resumed_from}: its weights do not fit this model ({first[:200]})",
                              hint="resume with the model parts it was trained with (its dp_state.json names "
                                   "them: pretrained_model_path, image_encoder_path)") from None
        on_info(f"resumed from {run.resumed_from} (step {run.state.global_step})")
        for note in apply_optimizer_settings(cfg, run.optimizer, run.scheduler, acc.num_processes):
            on_info(note)
    # 6. Trackers
    if cfg.report_to != "none":
        acc.init_trackers("dp-train", config=_tracker_config(cfg))
        run.trackers = True


def _refuse_to_restart_over(cfg: TrainConfig, resumed_from: Path | None) -> None:
    """A fresh run would rotate away the checkpoints of an earlier run in the same folder, and replace its
    final model (a run shorter than checkpointing_steps leaves a model and no checkpoint)."""
    found = list_checkpoints(cfg.output_dir)
    if found and not cfg.resume_from_checkpoint:
        raise ConfigError(f"{cfg.output_dir} already holds checkpoints ({found[-1][1].name} is the newest)",
                          hint="continue with --resume-from-checkpoint latest, or pick another --output-dir")
    if resumed_from is None and (cfg.output_dir / FINAL_MODEL_DIR).is_dir():
        raise ConfigError(f"{cfg.output_dir} already holds a trained model ({FINAL_MODEL_DIR}/) and no checkpoint to "
                          "resume from", hint="pick another --output-dir (--load-model that model to train on "
                          "from its weights), or move it away")


# Settings a resumed run takes from the checkpoint whatever it is told (they define what is trained, on what,
# and where the data order stands): a different value is refused, not silently ignored. The dataset is
# compared by its records (a copy in another place resumes), the model parts' paths are only reported (the
# checkpoint holds the trained weights), the process count is compared too (the schedule counts per process).
RESUME_FIXED = ("revision", "image_encoder_revision", "split", "train_batch_size",
                "gradient_accumulation_steps", "mixed_precision", "seed", "img_token_num",
                "max_reference_attributes", "resolution", "prediction_type", "text_image_linking",
                "train_image_encoder", "image_encoder_trainable_layers", "train_text_encoder",
                "reference_attribute_types", "mask_loss", "mask_loss_prob", "attribute_loc",
                "attribute_loc_weight", "attribute_localization_loss", "attribute_loc_layers",
                "attribute_loc_normalize", "uncondition_prob", "caption_augmentation",
                "caption_augmentation_prob", "reference_augmentation", "random_flip")


RESUME_PATHS = ("pretrained_model", "image_encoder", "dataset")


def resume_settings(run: Run) -> dict[str, Any]:
    """What a checkpoint records of its run: RESUME_FIXED, the dataset's records (`dataset_records`), the
    process count, and the paths of the model parts and the dataset (absolute), as JSON values."""
    cfg = run.cfg
    out = cfg.model_dump(mode="json", include=set(RESUME_FIXED))
    out["dataset_records"] = run.data_fingerprint
    out["num_processes"] = run.accelerator.num_processes
    for key in RESUME_PATHS:
        value = str(getattr(cfg, key) or "")
        out[f"{key}_path"] = str(Path(value).resolve()) if value and Path(value).exists() else value  # or hub id
    return out


def check_resume_settings(run: Run, checkpoint: Path) -> list[str]:
    """Refuse a resume whose fixed settings, records or process count differ from the checkpoint's run;
    return notes on the paths that changed (a dataset copied to a job's scratch, another cache snapshot)."""
    saved = read_settings(checkpoint)
    if saved is None:  # written before checkpoints kept their settings
        return []
    now = resume_settings(run)
    fixed = [*RESUME_FIXED, "dataset_records", "num_processes"]
    diff = [f"{k} {saved[k]!r} -> {now[k]!r}" for k in fixed if k in saved and saved[k] != now.get(k)]
    if diff:
        if "num_processes" in saved and saved["num_processes"] != now["num_processes"]:
            hint = f"launch {saved['num_processes']} process(es), as the checkpoint's run was"
        elif "dataset_records" in saved and saved["dataset_records"] != now["dataset_records"]:
            hint = f"resume on the records the checkpoint was trained on ({saved.get('dataset_path', 'its dataset')})"
        else:
            hint = "resume with the checkpoint's values (its dp_state.json lists them)"
        raise ConfigError(f"{checkpoint} was trained with other settings: {'; '.join(diff[:3])}"
                          + (f" (and {len(diff) - 3} more)" if len(diff) > 3 else ""),
                          hint=hint + ", or train into another --output-dir")
    notes = []
    for key in RESUME_PATHS:  # a checkpoint of an earlier dp has them under the plain key
        then = saved.get(f"{key}_path", saved.get(key))
        if then is not None and then != now[f"{key}_path"]:
            notes.append(f"{key} is {now[f'{key}_path']} now, {then} when {checkpoint.name} was written")
    if "dataset_records" not in saved:
        notes.append(f"{checkpoint.name} was written by an earlier dp: its records and process count were not "
                     "saved, so they are not checked")
    return notes


def apply_optimizer_settings(cfg: TrainConfig, optimizer, scheduler, num_processes: int) -> list[str]:
    """After loading a checkpoint: its optimizer state brought back the learning rates and Adam settings of
    the run that wrote it; this run's lr / unet_lr_scale / scale_lr / adam_* are applied instead (the schedule
    goes on from the checkpoint's step). Returns what changed, to tell the user."""
    fresh = group_settings(cfg, num_processes)
    inner = getattr(scheduler, "scheduler", scheduler)  # accelerate's wrapper
    notes = []
    for k, (group, new) in enumerate(zip(optimizer.param_groups, fresh)):
        old_base = inner.base_lrs[k]
        if new["lr"] != old_base:
            notes.append(f"learning rate of parameter group {k}: {old_base:g} -> {new['lr']:g} (this run's "
                         "settings; the schedule goes on from the checkpoint's step)")
        lambdas = getattr(inner, "lr_lambdas", None)  # LambdaLR (every schedule get_scheduler makes)
        # this run's schedule at the checkpoint's step; another scheduler: where the loaded one stands
        factor = lambdas[k](inner.last_epoch) if lambdas else (group["lr"] / old_base if old_base else 1.0)
        inner.base_lrs[k] = group["initial_lr"] = new["lr"]
        group["lr"] = new["lr"] * factor
        for key in ("betas", "eps", "weight_decay"):
            group[key] = new[key]
    return notes


def load_model(cfg: TrainConfig):
    """The DP model from pretrained parts, configured by the [train] settings."""
    from dp_models.dp_model import DPConfig, DPModel

    config = DPConfig(
        attribute_types=cfg.types, img_token_num=cfg.img_token_num,
        max_reference_attributes=cfg.max_reference_attributes, resolution=cfg.size,
        image_encoder_trainable_layers=cfg.image_encoder_trainable_layers,
        train_image_encoder=cfg.train_image_encoder, train_text_encoder=cfg.train_text_encoder,
        prediction_type=cfg.prediction_type, text_image_linking=LINKING_ALIASES.get(cfg.text_image_linking, cfg.text_image_linking),
        localization=cfg.attribute_loc, localization_weight=cfg.attribute_loc_weight,
        localization_loss_type=cfg.attribute_localization_loss, localization_layers=cfg.attribute_loc_layers,
        localization_norm=cfg.attribute_loc_normalize, mask_loss=cfg.mask_loss, mask_loss_prob=cfg.mask_loss_prob)
    return DPModel.from_pretrained_parts(cfg.pretrained_model, cfg.image_encoder, config, revision=cfg.revision,
                                         image_encoder_revision=cfg.image_encoder_revision)


TRAINED_PARTS = ("unet", "text_encoder", "image_encoder", "fusion")


def load_trained_weights(model, folder: Path, check_only: bool = False) -> None:
    """--load-model: copy the trained parts of a DP model folder into `model` (VAE, tokenizer and noise schedule
    stay those of pretrained_model); check_only: only check that the folder is complete."""
    from diffusers import UNet2DConditionModel
    from transformers import CLIPTextModel

    from dp_cli.errors import ModelError
    from dp_models.dp_model import CONFIG_NAME
    from dp_models.fusion import FusionModule
    from dp_models.image_encoder import ReferenceImageEncoder
    from dp_models.loading import float32_kwargs, model_errors, require_parts

    hint = "give the model folder written by dp train (OUTPUT_DIR/model) or DPModel.save_pretrained"
    if not Path(folder).is_dir():
        raise ModelError(f"--load-model {folder}: no such folder", hint=hint)
    require_parts(str(folder), TRAINED_PARTS + (CONFIG_NAME,), "--load-model folder", hint)
    if check_only:
        return
    loaders = {"unet": lambda: UNet2DConditionModel.from_pretrained(folder, subfolder="unet"),
               "text_encoder": lambda: CLIPTextModel.from_pretrained(folder, **float32_kwargs({"subfolder": "text_encoder"})),
               "image_encoder": lambda: ReferenceImageEncoder.from_pretrained(
                   str(folder), trainable_layers=None, subfolder="image_encoder"),
               "fusion": lambda: FusionModule.from_pretrained(folder, subfolder="fusion")}
    for name, load in loaders.items():  # one part at a time: at most one extra copy of a part in memory
        with model_errors(str(folder), name):
            trained = load()
        try:
            getattr(model, name).load_state_dict(trained.state_dict())
        except RuntimeError as exc:  # another architecture: missing/unexpected keys or other shapes
            first = str(exc).strip().splitlines()[0]
            raise ModelError(f"--load-model {folder}: its {name} does not fit the model built from the "
                             f"pretrained model ({first})",
                             hint="train from the same pretrained model and image encoder, with the same "
                                  "img_token_num") from None
        del trained


def configure_model(cfg: TrainConfig, model) -> None:
    """Runtime switches on the loaded model (resolution and trainable layers are checked by DPModel)."""
    if cfg.disable_flash_attention:
        from diffusers.models.attention_processor import AttnProcessor

        model.unet.set_attn_processor(AttnProcessor())
    if cfg.gradient_checkpointing:
        model.unet.enable_gradient_checkpointing()
        if cfg.train_text_encoder:
            model.text_encoder.gradient_checkpointing_enable()
    model.compile_parts(cfg.compile)


def build_data(run: Run, on_info: Callable[[str], None], dataset) -> None:
    """Scan the split, build the dataset (with cached latents when possible) and its loader."""
    from dp_cli.train.data import (ReferenceSpec, TrainDataset, cache_key, load_or_build_latent_cache,
                                   scan_split)

    cfg, acc, model = run.cfg, run.accelerator, run.model
    run.scan = scan_split(dataset, cfg.split, strict=cfg.strict, need_parsing=cfg.attribute_loc or cfg.mask_loss)
    enc = model.image_encoder
    run.data = TrainDataset(
        dataset, run.scan.records, model.tokenizer, types=cfg.types, size=cfg.size,
        max_attributes=cfg.max_reference_attributes, reference=ReferenceSpec(enc.image_size, enc.mean, enc.std),
        seed=cfg.seed, caption_augmentation=cfg.caption_augmentation,
        caption_augmentation_prob=cfg.caption_augmentation_prob, uncondition_prob=cfg.uncondition_prob,
        reference_augmentation=cfg.reference_augmentation,
        random_flip=cfg.random_flip, strict=cfg.strict)
    if cfg.cache_latents and not cfg.random_flip:
        with acc.main_process_first():
            fingerprint = _vae_fingerprint(model.vae)
            if acc.is_main_process:
                cached = (cfg.output_dir / "cache" / f"latents-{cache_key(run.data, fingerprint)}.safetensors").exists()
                on_info(f"{'reading cached' if cached else 'caching'} VAE latents of {len(run.data)} images")
            model.vae.to(acc.device)
            run.data.latent_cache, run.latent_cache, _ = load_or_build_latent_cache(
                model.vae, run.data, cfg.output_dir / "cache", fingerprint, acc.device)
    workers = loader_workers(cfg, acc)
    run.loader = torch.utils.data.DataLoader(  # persistent: workers start once, not once per epoch
        run.data, batch_size=cfg.train_batch_size, shuffle=True, num_workers=workers, persistent_workers=workers > 0,
        pin_memory=cfg.pin_memory and torch.cuda.is_available(), worker_init_fn=_loader_worker_init,
        drop_last=len(run.data) >= cfg.train_batch_size * acc.num_processes)


def _loader_worker_init(worker_id: int) -> None:
    """A scheduler's SIGTERM reaches the whole process group: the training process ends in order (Ctrl-C's
    way) and stops its loader workers itself; a worker killed by it first made PyTorch raise 'DataLoader
    worker killed by signal' in the training process. (A worker still ends when its parent dies.)"""
    import signal

    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def records_fingerprint(records: list) -> str:
    """Changes when the split's records do (ids, images, persons, captions), not when the dataset moves."""
    h = hashlib.sha256()
    for r in records:  # with its parsing map's name: adding maps changes which records train
        h.update(json.dumps([r.id, r.image, r.person_id, r.captions, r.parsing], ensure_ascii=False).encode()
                 + b"\n")
    return f"{len(records)}:{h.hexdigest()[:16]}"


def loader_workers(cfg: TrainConfig, acc) -> int:
    """dataloader_num_workers, with auto = 0 on CPU (the processes already share the cores) and, on a GPU, up
    to 4 per process from the cores left (cutting reference crops for a GPU batch takes ~0.2 s)."""
    if cfg.dataloader_num_workers != "auto":
        return cfg.dataloader_num_workers
    if acc.device.type == "cpu":
        return 0
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    local = int(os.environ.get("LOCAL_WORLD_SIZE") or acc.num_processes)  # processes on this machine
    return max(0, min(4, cores // max(local, 1) - 1))


@torch.no_grad()
def _vae_fingerprint(vae) -> str:
    """Changes when the VAE's weights do (a retrained VAE in the same folder must not reuse old latents)."""
    sums = [float(p.double().sum()) + 1e-3 * float(p.double().abs().sum()) for p in vae.parameters()]
    return f"{type(vae).__name__}:{len(sums)}:{sum(sums):.10e}:{sum(sums[::3]):.10e}"


def group_settings(cfg: TrainConfig, num_processes: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """AdamW's settings for the UNet's parameter group and for the other trained parts' group."""
    lr = cfg.lr * (cfg.train_batch_size * cfg.gradient_accumulation_steps * num_processes if cfg.scale_lr else 1)
    adam = dict(betas=(cfg.adam_beta1, cfg.adam_beta2), weight_decay=cfg.adam_weight_decay, eps=cfg.adam_epsilon)
    return {**adam, "lr": lr * cfg.unet_lr_scale}, {**adam, "lr": lr}


def build_optimizer(cfg: TrainConfig, model, num_processes: int) -> torch.optim.Optimizer:
    """AdamW with the UNet at lr * unet_lr_scale and the other trainable parts at lr."""
    unet_group, rest_group = group_settings(cfg, num_processes)
    unet = [p for p in model.unet.parameters() if p.requires_grad]
    unet_ids = {id(p) for p in unet}
    rest = [p for p in model.parameters() if p.requires_grad and id(p) not in unet_ids]
    groups = [{"params": unet, "lr": unet_group["lr"]}] + ([{"params": rest, "lr": rest_group["lr"]}] if rest else [])
    # fused: one kernel per step (3.5x faster than foreach on CPU here; on GPUs the documented fastest);
    # foreach where this torch has no fused kernel for the parameters' device
    kwargs = rest_group
    if cfg.mixed_precision != "fp16":  # fp16: the GradScaler must see skipped steps (the scheduler waits)
        try:  # copies: a refused attempt may already have written its defaults into the group dicts
            return torch.optim.AdamW([dict(g) for g in groups], fused=True, **kwargs)
        except (RuntimeError, TypeError):
            pass
    return torch.optim.AdamW([dict(g) for g in groups], foreach=True, **kwargs)


def _tracker_config(cfg: TrainConfig) -> dict[str, Any]:
    out = {}
    for k, v in cfg.model_dump().items():
        out[k] = v if isinstance(v, (int, float, str, bool)) else str(v)
    return out


# ------------------------------------------------------------------------------------------------ fit
def fit(run: Run, on_step: Callable[[StepEvent], None]) -> TrainResult:
    """The training loop: epochs of micro-batches, optimizer steps, checkpoints, the final model."""
    from dp_cli.fsutil import JsonlAppender, rewrite_jsonl

    cfg, acc, st = run.cfg, run.accelerator, run.state
    batches_per_epoch = len(run.loader)
    log = None
    if acc.is_main_process:  # lines a killed run wrote after the checkpoint resumed from are redone: drop them
        rewrite_jsonl(cfg.output_dir / LOG_FILE, lambda row: not _after(row, st.global_step))
        log = JsonlAppender(cfg.output_dir / LOG_FILE)
    started, start_step, start_samples = time.perf_counter(), st.global_step, st.samples_seen
    losses: list[float] = []
    run.module.train()
    try:
        while st.global_step < run.total_steps:
            loader = _epoch_loader(run, batches_per_epoch)
            acc_sums = {"loss": 0.0, "denoise": 0.0, "loc": 0.0}
            for batch in loader:
                counter = st.epoch * batches_per_epoch + st.batches_in_epoch
                out = micro_step(run, batch, counter)
                for k in acc_sums:
                    acc_sums[k] += out[k] / cfg.gradient_accumulation_steps
                st.batches_in_epoch += 1
                st.samples_seen += batch["input_ids"].shape[0] * acc.num_processes
                if not acc.sync_gradients:
                    continue
                st.global_step += 1
                losses.append(acc_sums["loss"])
                rate = (st.samples_seen - start_samples) / max(time.perf_counter() - started, 1e-9)
                event = StepEvent(st.global_step, run.total_steps, acc_sums["loss"], acc_sums["denoise"],
                                  acc_sums["loc"], run.scheduler.get_last_lr()[0], rate)
                _record(run, log, event)
                on_step(event)
                acc_sums = {k: 0.0 for k in acc_sums}
                if st.global_step % cfg.checkpointing_steps == 0:
                    _checkpoint(run)
                if st.global_step >= run.total_steps:
                    break
            else:
                st.epoch, st.batches_in_epoch = st.epoch + 1, 0
    finally:
        if log is not None:
            log.close()
    model_dir = save_final_model(run)
    if run.trackers:
        acc.end_training()
    wall = time.perf_counter() - started
    return _result(run, model_dir, losses, wall, start_step, start_samples)


def _after(row: dict, step: int) -> bool:
    """A log line of a step after `step`."""
    return isinstance(row.get("step"), int) and row["step"] > step


def _epoch_loader(run: Run, batches_per_epoch: int):
    """This epoch's loader, skipping the batches a resumed run has already seen."""
    st = run.state
    run.data.set_epoch(st.epoch)
    run.loader.set_epoch(st.epoch)
    if st.batches_in_epoch >= batches_per_epoch:
        st.epoch, st.batches_in_epoch = st.epoch + 1, 0
        return _epoch_loader(run, batches_per_epoch)
    if st.batches_in_epoch:
        return run.accelerator.skip_first_batches(run.loader, st.batches_in_epoch)
    return run.loader


def micro_step(run: Run, batch: dict, counter: int) -> dict[str, float]:
    """Forward, finite check, backward and (when accumulation is complete) the optimizer step."""
    cfg, acc = run.cfg, run.accelerator
    # noise, timesteps and the mask-loss coin of this micro-batch on this process
    g = torch.Generator().manual_seed((cfg.seed * 1_000_003 + counter) * 4099 + acc.process_index)
    run.skipped_ids.update(r for names in batch.pop("skipped", ()) for r in names.split("\n") if r)
    if "latent_dist" in batch:
        mean, logvar = batch.pop("latent_dist").chunk(2, dim=1)
        eps = torch.randn(mean.shape, generator=g).to(mean.device)
        batch["latents"] = mean + torch.exp(0.5 * logvar.clamp(-30.0, 20.0)) * eps
    with acc.accumulate(run.module):
        out = run.module(batch, g, cfg.attribute_loc, cfg.mask_loss)
        dev = out["loss"].device
        values = torch.stack([out["loss"].detach().float(), _scalar(out.get("denoise"), dev), _scalar(out.get("loc"), dev)])
        values = acc.reduce(values, reduction="mean")
        acc.backward(out["loss"])
        # checked after the backward is queued (reading the values waits for the GPU) and before any update
        if not bool(torch.isfinite(values).all()):
            _non_finite(run, values)
        if acc.sync_gradients and cfg.max_grad_norm > 0:
            _clip_gradients(run, cfg.max_grad_norm)
        run.optimizer.step()
        run.scheduler.step()
        _zero_gradients(run)
    return {"loss": float(values[0]), "denoise": float(values[1]), "loc": float(values[2])}


def flat_grads(acc, params: list) -> FlatGrads | None:
    """One buffer behind the trained gradients, except where the backend handles gradients itself (FSDP,
    DeepSpeed, XLA, Megatron)."""
    from accelerate.utils import DistributedType

    own = {DistributedType.FSDP, DistributedType.DEEPSPEED, DistributedType.XLA, DistributedType.MEGATRON_LM}
    return None if acc.distributed_type in own else FlatGrads.for_params(params)


def _clip_gradients(run: Run, max_norm: float) -> None:
    if run.grads is not None and run.grads.intact():
        run.accelerator.unscale_gradients()  # fp16: what accelerate's clip_grad_norm_ does first
        run.grads.clip_(max_norm)
    else:
        run.accelerator.clip_grad_norm_(run.trainable, max_norm)


def _zero_gradients(run: Run) -> None:
    if run.grads is None:
        run.optimizer.zero_grad(set_to_none=True)
    elif run.accelerator.sync_gradients:  # as the prepared optimizer's zero_grad: not within an accumulation
        run.grads.zero_()


def _scalar(value, device: torch.device) -> torch.Tensor:
    if value is None:
        return torch.zeros((), device=device)
    if torch.is_tensor(value):
        return value.detach().float().reshape(()).to(device)
    return torch.tensor(float(value), device=device)


def _non_finite(run: Run, values: torch.Tensor) -> None:
    found = list_checkpoints(run.cfg.output_dir)
    last = f"last good checkpoint: {found[-1][1]}" if found else "no checkpoint was written yet"
    raise TrainingError(
        f"step {run.state.global_step + 1}: non-finite loss (loss={float(values[0])}, denoise={float(values[1])}, "
        f"loc={float(values[2])}); training stopped, {last}",
        hint="lower --lr, use --mixed-precision no or bf16, then resume with --resume-from-checkpoint latest")


def _record(run: Run, log, event: StepEvent) -> None:
    row = {"step": event.step, "loss": event.loss, "denoise": event.denoise, "loc": event.loc, "lr": event.lr,
           "epoch": run.state.epoch}
    if log is not None:
        log.append(row)
    if run.trackers and event.step % run.cfg.log_every == 0:
        run.accelerator.log({k: v for k, v in row.items() if k != "step"}, step=event.step)


def _checkpoint(run: Run) -> Path:
    cfg = run.cfg
    return save_checkpoint(run.accelerator, cfg.output_dir, run.state, keep_only_last=cfg.keep_only_last_checkpoint,
                           keep_interval=cfg.keep_interval, total_limit=cfg.checkpoints_total_limit,
                           settings=resume_settings(run))


def save_final_model(run: Run) -> Path | None:
    """output_dir/model: a self-contained DP model folder, written to a temp folder then renamed."""
    acc = run.accelerator
    acc.wait_for_everyone()
    final = run.cfg.output_dir / FINAL_MODEL_DIR
    if acc.is_main_process:
        model = acc.unwrap_model(run.module).model
        tmp = run.cfg.output_dir / f".{FINAL_MODEL_DIR}.tmp"
        if tmp.exists():
            shutil.rmtree(tmp)
        model.save_pretrained(tmp)
        usual_modes(tmp)
        replace_dir(tmp, final)
    acc.wait_for_everyone()
    return final


def _all_skipped(run: Run) -> set[str]:
    """The records found unreadable while training, on every process (a collective call under several)."""
    from accelerate.utils import gather_object

    return set(gather_object(sorted(run.skipped_ids)))


def _result(run: Run, model_dir: Path | None, losses: list[float], wall: float, start_step: int,
            start_samples: int) -> TrainResult:
    st, acc, scan = run.state, run.accelerator, run.scan
    samples = st.samples_seen - start_samples
    return TrainResult(
        output_dir=run.cfg.output_dir, model_dir=model_dir, steps=st.global_step - start_step,
        total_steps=run.total_steps, epochs=st.epoch + (1 if st.batches_in_epoch else 0), samples=samples,
        last_loss=losses[-1] if losses else None, mean_loss=sum(losses) / len(losses) if losses else None,
        samples_per_s=samples / wall if wall > 0 else 0.0, wall_s=wall, images=len(scan.records),
        skipped_files=len(scan.skipped) + len(_all_skipped(run)), without_parsing=scan.without_parsing,
        checkpoints=[p.name for _, p in list_checkpoints(run.cfg.output_dir)],
        resumed_from=str(run.resumed_from) if run.resumed_from else None,
        latent_cache=str(run.latent_cache) if run.latent_cache else None, processes=acc.num_processes,
        device=str(acc.device))
