"""`dp train`: train the Diverse Person model (works under `accelerate launch` and `torchrun`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from dp_cli.cli_common import dp_command, seed_aliases, settings, with_data_table

_O = typer.Option

# The seed's `train.py` spellings (its README's command and its parse_args) -> parameters of `command`.
SEED_ALIASES = {
    "--pretrained_model_hf": "pretrained_model", "--image_encoder_hf": "image_encoder",
    "--load_model": "load_model", "--dataset_name": "dataset", "--output_dir": "output_dir",
    "--logging_dir": "logging_dir", "--max_train_steps": "max_train_steps", "--num_train_epochs": "num_train_epochs",
    "--train_batch_size": "train_batch_size", "--gradient_accumulation_steps": "gradient_accumulation_steps",
    "--learning_rate": "lr", "--unet_lr_scale": "unet_lr_scale", "--scale_lr": "scale_lr",
    "--lr_scheduler": "lr_scheduler", "--lr_warmup_steps": "lr_warmup_steps", "--adam_beta1": "adam_beta1",
    "--adam_beta2": "adam_beta2", "--adam_weight_decay": "adam_weight_decay", "--adam_epsilon": "adam_epsilon",
    "--max_grad_norm": "max_grad_norm", "--mixed_precision": "mixed_precision", "--img_token_num": "img_token_num",
    "--MAX_REFERENCE_ATTRIBUTE_NUM": "max_reference_attributes", "--text_image_linking": "text_image_linking",
    "--disable_flashattention": "disable_flash_attention", "--train_image_encoder": "train_image_encoder",
    "--image_encoder_trainable_layers": "image_encoder_trainable_layers",
    "--train_text_encoder": "train_text_encoder", "--gradient_checkpointing": "gradient_checkpointing",
    "--reference_attribute_types": "reference_attribute_types", "--mask_loss": "mask_loss",
    "--mask_loss_prob": "mask_loss_prob", "--attribute_loc": "attribute_loc",
    "--attribute_loc_weight": "attribute_loc_weight", "--attribute_localization_loss": "attribute_localization_loss",
    "--uncondition_prob": "uncondition_prob", "--checkpointing_steps": "checkpointing_steps",
    "--keep_only_last_checkpoint": "keep_only_last_checkpoint", "--keep_interval": "keep_interval",
    "--checkpoints_total_limit": "checkpoints_total_limit", "--resume_from_checkpoint": "resume_from_checkpoint",
    "--report_to": "report_to",
}


@dp_command
@seed_aliases(SEED_ALIASES)
def command(
    pretrained_model: Annotated[Optional[str], _O("--pretrained-model", "--pretrained-model-hf",
        help="SD-1.5-layout model: hub id or folder.")] = None,
    image_encoder: Annotated[Optional[str], _O("--image-encoder", "--image-encoder-hf",
        help="CLIP vision model: hub id or folder.")] = None,
    revision: Annotated[Optional[str], _O("--revision",
        help="Hub revision (branch, tag, commit) of --pretrained-model.")] = None,
    image_encoder_revision: Annotated[Optional[str], _O("--image-encoder-revision",
        help="Hub revision of --image-encoder.")] = None,
    load_model: Annotated[Optional[Path], _O("--load-model", metavar="PATH",
        help="Start from the weights of a DP model folder (OUTPUT_DIR/model of a run): step 0, "
             "fresh optimizer.")] = None,
    dataset: Annotated[Optional[Path], _O("--dataset", "--dataset-name", "-d",
        help="Person dataset with parsing maps (default: `dataset` of the train table, else of the data table).")] = None,
    split: Annotated[Optional[str], _O("--split", help="Split to train on (default: train).")] = None,
    output_dir: Annotated[Optional[Path], _O("--output-dir", "-o",
        help="Run folder: checkpoints, logs, and the final model in OUTPUT_DIR/model.")] = None,
    logging_dir: Annotated[Optional[Path], _O("--logging-dir", help="Tracker logs (default: OUTPUT_DIR/logs).")] = None,
    max_train_steps: Annotated[Optional[int], _O("--max-train-steps", help="Optimizer steps (default 30000).")] = None,
    num_train_epochs: Annotated[Optional[int], _O("--num-train-epochs",
        help="Stop after this many epochs if that comes first.")] = None,
    train_batch_size: Annotated[Optional[int], _O("--train-batch-size", help="Batch size per device.")] = None,
    gradient_accumulation_steps: Annotated[Optional[int], _O("--gradient-accumulation-steps")] = None,
    lr: Annotated[Optional[float], _O("--lr", "--learning-rate", help="Learning rate (default 1e-5).")] = None,
    unet_lr_scale: Annotated[Optional[float], _O("--unet-lr-scale", help="UNet lr = lr x this.")] = None,
    scale_lr: Annotated[Optional[bool], _O("--scale-lr/--no-scale-lr",
        help="Scale lr by batch x accumulation x processes.")] = None,
    lr_scheduler: Annotated[Optional[str], _O("--lr-scheduler",
        help="constant, constant_with_warmup, linear, cosine, cosine_with_restarts, polynomial.")] = None,
    lr_warmup_steps: Annotated[Optional[int], _O("--lr-warmup-steps")] = None,
    adam_beta1: Annotated[Optional[float], _O("--adam-beta1")] = None,
    adam_beta2: Annotated[Optional[float], _O("--adam-beta2")] = None,
    adam_weight_decay: Annotated[Optional[float], _O("--adam-weight-decay")] = None,
    adam_epsilon: Annotated[Optional[float], _O("--adam-epsilon")] = None,
    max_grad_norm: Annotated[Optional[float], _O("--max-grad-norm", help="0 = no clipping.")] = None,
    mixed_precision: Annotated[Optional[str], _O("--mixed-precision", envvar="DP_MIXED_PRECISION",
        help="no, fp16 (GPU) or bf16.")] = None,
    seed: Annotated[Optional[int], _O("--seed")] = None,
    img_token_num: Annotated[Optional[int], _O("--img-token-num")] = None,
    max_reference_attributes: Annotated[Optional[int], _O("--max-reference-attributes",
        "--max-reference-attribute-num", help="Most reference attributes per image (default 3).")] = None,
    resolution: Annotated[Optional[str], _O("--resolution", help="'128' (square) or 'HxW', e.g. 128x64.")] = None,
    prediction_type: Annotated[Optional[str], _O("--prediction-type", help="epsilon or v_prediction.")] = None,
    text_image_linking: Annotated[Optional[str], _O("--text-image-linking")] = None,
    disable_flash_attention: Annotated[Optional[bool], _O("--disable-flash-attention/--flash-attention",
        "--disable-flashattention", help="Plain attention instead of SDPA.")] = None,
    train_image_encoder: Annotated[Optional[bool], _O("--train-image-encoder/--no-train-image-encoder")] = None,
    image_encoder_trainable_layers: Annotated[Optional[int], _O("--image-encoder-trainable-layers")] = None,
    train_text_encoder: Annotated[Optional[bool], _O("--train-text-encoder/--no-train-text-encoder")] = None,
    gradient_checkpointing: Annotated[Optional[bool],
        _O("--gradient-checkpointing/--no-gradient-checkpointing")] = None,
    compile: Annotated[Optional[str], _O("--compile",
        help="torch.compile the UNet and encoders: none, default, reduce-overhead or max-autotune.")] = None,
    reference_attribute_types: Annotated[Optional[str], _O("--reference-attribute-types",
        help="e.g. hair_uppercloth_bottomcloth.")] = None,
    mask_loss: Annotated[Optional[bool], _O("--mask-loss/--no-mask-loss")] = None,
    mask_loss_prob: Annotated[Optional[float], _O("--mask-loss-prob")] = None,
    attribute_loc: Annotated[Optional[bool], _O("--attribute-loc/--no-attribute-loc",
        help="Cross-attention localization loss.")] = None,
    attribute_loc_weight: Annotated[Optional[float], _O("--attribute-loc-weight")] = None,
    attribute_localization_loss: Annotated[Optional[str], _O("--attribute-localization-loss")] = None,
    attribute_loc_layers: Annotated[Optional[int], _O("--attribute-loc-layers",
        help="Middle K of SD-1.5's 7 cross-attention blocks (by name) localized.")] = None,
    attribute_loc_normalize: Annotated[Optional[bool], _O("--attribute-loc-normalize/--no-attribute-loc-normalize")] = None,
    uncondition_prob: Annotated[Optional[float], _O("--uncondition-prob",
        help="Probability of an empty caption (for guidance).")] = None,
    caption_augmentation: Annotated[Optional[bool], _O("--caption-augmentation/--no-caption-augmentation")] = None,
    caption_augmentation_prob: Annotated[Optional[float], _O("--caption-augmentation-prob")] = None,
    reference_augmentation: Annotated[Optional[bool], _O("--reference-augmentation/--no-reference-augmentation",
        help="Vary reference crops (background, padding, scale).")] = None,
    random_flip: Annotated[Optional[bool], _O("--random-flip/--no-random-flip")] = None,
    cache_latents: Annotated[Optional[bool], _O("--cache-latents/--no-cache-latents")] = None,
    dataloader_num_workers: Annotated[Optional[str], _O("--dataloader-num-workers",
                                                         help="Worker processes, or auto.")] = None,
    pin_memory: Annotated[Optional[bool], _O("--pin-memory/--no-pin-memory")] = None,
    strict: Annotated[Optional[bool], _O("--strict/--no-strict",
        help="Fail on a missing or corrupt file instead of skipping it.")] = None,
    checkpointing_steps: Annotated[Optional[int], _O("--checkpointing-steps")] = None,
    keep_only_last_checkpoint: Annotated[Optional[bool],
        _O("--keep-only-last-checkpoint/--keep-all-checkpoints")] = None,
    keep_interval: Annotated[Optional[int], _O("--keep-interval",
        help="Checkpoints at multiples of this step are kept.")] = None,
    checkpoints_total_limit: Annotated[Optional[int], _O("--checkpoints-total-limit")] = None,
    resume_from_checkpoint: Annotated[Optional[str], _O("--resume-from-checkpoint",
        help="'latest' or a checkpoint folder.")] = None,
    report_to: Annotated[Optional[str], _O("--report-to", help="none, tensorboard, wandb or all.")] = None,
    log_every: Annotated[Optional[int], _O("--log-every", help="Tracker logging interval in steps.")] = None,
) -> None:
    """Train the Diverse Person model: denoising + mask + localization losses on a person dataset.

    Every setting is also a key of the train table in dp.toml; flags win over the environment and the TOML file.
    Multi-GPU: `accelerate launch -m dp_cli train ...` or `torchrun --nproc_per_node N -m dp_cli train ...`.
    The seed's spellings of the flags (`--pretrained_model_hf`, `--MAX_REFERENCE_ATTRIBUTE_NUM`, ...) work too.
    """
    from dp_cli.train.config import TrainConfig

    flags = {k: v for k, v in locals().items() if k != "TrainConfig"}
    _run(with_data_table(settings(TrainConfig, "train", **flags), "dataset"))


def _quiet_libraries() -> None:
    """Library progress bars and notices would break our one progress bar (--verbose keeps them)."""
    from dp_cli import console

    if console.STATE.verbose:
        return
    import diffusers
    import transformers

    for lib in (diffusers, transformers):
        lib.utils.logging.set_verbosity_error()
        lib.utils.logging.disable_progress_bar()


def _run(cfg) -> None:
    from dp_cli import console
    from dp_cli.train import loop

    _quiet_libraries()
    # 1. Validate and load (errors here leave nothing behind), 2. train under one progress bar
    run = loop.setup(cfg)
    loop.main(run, console.info)
    with console.progress(transient=True) as bar:
        task = bar.add_task("train", total=run.total_steps, completed=run.state.global_step, status="")

        def on_step(e) -> None:
            status = (f"loss {e.loss:.4f} (denoise {e.denoise:.4f}, loc {e.loc:.4f}) "
                      f"lr {e.lr:.2e} {e.samples_per_s:.1f} samples/s")
            bar.update(task, completed=e.step, status=status)

        result = loop.fit(run, on_step)
    _render(result)


def _render(result) -> None:
    from dataclasses import asdict

    from dp_cli import console

    rows = [("output", result.output_dir), ("model", result.model_dir),
            ("steps", f"{result.steps} this run, {result.total_steps} in all"),
            ("samples", result.samples), ("samples/s", round(result.samples_per_s, 2)),
            ("last loss", result.last_loss), ("mean loss", result.mean_loss),
            ("images", result.images), ("skipped files", result.skipped_files),
            ("without parsing", result.without_parsing), ("checkpoints", ", ".join(result.checkpoints) or "-"),
            ("resumed from", result.resumed_from or "-"), ("latent cache", result.latent_cache or "off"),
            ("processes", f"{result.processes} on {result.device}"), ("wall time", f"{result.wall_s:.1f} s")]
    console.render_summary("dp train", rows, asdict(result))
