"""`dp train`: train the Diverse Person model (works under `accelerate launch` and `torchrun`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional


from dp_cli.cli_common import dp_command, seed_aliases, setting_option, settings, with_data_table
from dp_cli.train.config import TrainConfig


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
    pretrained_model: Annotated[Optional[str], setting_option(
        TrainConfig, "pretrained_model", "--pretrained-model", "--pretrained-model-hf")] = None,
    image_encoder: Annotated[Optional[str], setting_option(
        TrainConfig, "image_encoder", "--image-encoder", "--image-encoder-hf")] = None,
    revision: Annotated[Optional[str], setting_option(TrainConfig, "revision", "--revision")] = None,
    image_encoder_revision: Annotated[Optional[str], setting_option(
        TrainConfig, "image_encoder_revision", "--image-encoder-revision")] = None,
    load_model: Annotated[Optional[Path], setting_option(
        TrainConfig, "load_model", "--load-model", metavar="PATH")] = None,
    dataset: Annotated[Optional[Path], setting_option(
        TrainConfig, "dataset", "--dataset", "--dataset-name", "-d")] = None,
    split: Annotated[Optional[str], setting_option(TrainConfig, "split", "--split")] = None,
    output_dir: Annotated[Optional[Path], setting_option(TrainConfig, "output_dir", "--output-dir", "-o")] = None,
    logging_dir: Annotated[Optional[Path], setting_option(TrainConfig, "logging_dir", "--logging-dir")] = None,
    max_train_steps: Annotated[Optional[int], setting_option(
        TrainConfig, "max_train_steps", "--max-train-steps")] = None,
    num_train_epochs: Annotated[Optional[int], setting_option(
        TrainConfig, "num_train_epochs", "--num-train-epochs")] = None,
    train_batch_size: Annotated[Optional[int], setting_option(
        TrainConfig, "train_batch_size", "--train-batch-size")] = None,
    gradient_accumulation_steps: Annotated[Optional[int], setting_option(
        TrainConfig, "gradient_accumulation_steps", "--gradient-accumulation-steps")] = None,
    lr: Annotated[Optional[float], setting_option(TrainConfig, "lr", "--lr", "--learning-rate")] = None,
    unet_lr_scale: Annotated[Optional[float], setting_option(TrainConfig, "unet_lr_scale", "--unet-lr-scale")] = None,
    scale_lr: Annotated[Optional[bool], setting_option(TrainConfig, "scale_lr", "--scale-lr/--no-scale-lr")] = None,
    lr_scheduler: Annotated[Optional[str], setting_option(TrainConfig, "lr_scheduler", "--lr-scheduler")] = None,
    lr_warmup_steps: Annotated[Optional[int], setting_option(
        TrainConfig, "lr_warmup_steps", "--lr-warmup-steps")] = None,
    adam_beta1: Annotated[Optional[float], setting_option(TrainConfig, "adam_beta1", "--adam-beta1")] = None,
    adam_beta2: Annotated[Optional[float], setting_option(TrainConfig, "adam_beta2", "--adam-beta2")] = None,
    adam_weight_decay: Annotated[Optional[float], setting_option(
        TrainConfig, "adam_weight_decay", "--adam-weight-decay")] = None,
    adam_epsilon: Annotated[Optional[float], setting_option(TrainConfig, "adam_epsilon", "--adam-epsilon")] = None,
    max_grad_norm: Annotated[Optional[float], setting_option(TrainConfig, "max_grad_norm", "--max-grad-norm")] = None,
    mixed_precision: Annotated[Optional[str], setting_option(
        TrainConfig, "mixed_precision", "--mixed-precision")] = None,
    seed: Annotated[Optional[int], setting_option(TrainConfig, "seed", "--seed")] = None,
    img_token_num: Annotated[Optional[int], setting_option(TrainConfig, "img_token_num", "--img-token-num")] = None,
    max_reference_attributes: Annotated[Optional[int], setting_option(
        TrainConfig, "max_reference_attributes", "--max-reference-attributes", "--max-reference-attribute-num")] = None,
    resolution: Annotated[Optional[str], setting_option(TrainConfig, "resolution", "--resolution")] = None,
    prediction_type: Annotated[Optional[str], setting_option(
        TrainConfig, "prediction_type", "--prediction-type")] = None,
    text_image_linking: Annotated[Optional[str], setting_option(
        TrainConfig, "text_image_linking", "--text-image-linking")] = None,
    disable_flash_attention: Annotated[Optional[bool], setting_option(
        TrainConfig, "disable_flash_attention", "--disable-flash-attention/--flash-attention", "--disable-flashattention")] = None,
    train_image_encoder: Annotated[Optional[bool], setting_option(
        TrainConfig, "train_image_encoder", "--train-image-encoder/--no-train-image-encoder")] = None,
    image_encoder_trainable_layers: Annotated[Optional[int], setting_option(
        TrainConfig, "image_encoder_trainable_layers", "--image-encoder-trainable-layers")] = None,
    train_text_encoder: Annotated[Optional[bool], setting_option(
        TrainConfig, "train_text_encoder", "--train-text-encoder/--no-train-text-encoder")] = None,
    gradient_checkpointing: Annotated[Optional[bool],
        setting_option(
            TrainConfig, "gradient_checkpointing", "--gradient-checkpointing/--no-gradient-checkpointing")] = None,
    compile: Annotated[Optional[str], setting_option(TrainConfig, "compile", "--compile")] = None,
    reference_attribute_types: Annotated[Optional[str], setting_option(
        TrainConfig, "reference_attribute_types", "--reference-attribute-types")] = None,
    mask_loss: Annotated[Optional[bool], setting_option(TrainConfig, "mask_loss", "--mask-loss/--no-mask-loss")] = None,
    mask_loss_prob: Annotated[Optional[float], setting_option(
        TrainConfig, "mask_loss_prob", "--mask-loss-prob")] = None,
    attribute_loc: Annotated[Optional[bool], setting_option(
        TrainConfig, "attribute_loc", "--attribute-loc/--no-attribute-loc")] = None,
    attribute_loc_weight: Annotated[Optional[float], setting_option(
        TrainConfig, "attribute_loc_weight", "--attribute-loc-weight")] = None,
    attribute_localization_loss: Annotated[Optional[str], setting_option(
        TrainConfig, "attribute_localization_loss", "--attribute-localization-loss")] = None,
    attribute_loc_layers: Annotated[Optional[int], setting_option(
        TrainConfig, "attribute_loc_layers", "--attribute-loc-layers")] = None,
    attribute_loc_normalize: Annotated[Optional[bool], setting_option(
        TrainConfig, "attribute_loc_normalize", "--attribute-loc-normalize/--no-attribute-loc-normalize")] = None,
    uncondition_prob: Annotated[Optional[float], setting_option(
        TrainConfig, "uncondition_prob", "--uncondition-prob")] = None,
    caption_augmentation: Annotated[Optional[bool], setting_option(
        TrainConfig, "caption_augmentation", "--caption-augmentation/--no-caption-augmentation")] = None,
    caption_augmentation_prob: Annotated[Optional[float], setting_option(
        TrainConfig, "caption_augmentation_prob", "--caption-augmentation-prob")] = None,
    reference_augmentation: Annotated[Optional[bool], setting_option(
        TrainConfig, "reference_augmentation", "--reference-augmentation/--no-reference-augmentation")] = None,
    random_flip: Annotated[Optional[bool], setting_option(
        TrainConfig, "random_flip", "--random-flip/--no-random-flip")] = None,
    cache_latents: Annotated[Optional[bool], setting_option(
        TrainConfig, "cache_latents", "--cache-latents/--no-cache-latents")] = None,
    dataloader_num_workers: Annotated[Optional[str], setting_option(
        TrainConfig, "dataloader_num_workers", "--dataloader-num-workers")] = None,
    pin_memory: Annotated[Optional[bool], setting_option(
        TrainConfig, "pin_memory", "--pin-memory/--no-pin-memory")] = None,
    strict: Annotated[Optional[bool], setting_option(TrainConfig, "strict", "--strict/--no-strict")] = None,
    checkpointing_steps: Annotated[Optional[int], setting_option(
        TrainConfig, "checkpointing_steps", "--checkpointing-steps")] = None,
    keep_only_last_checkpoint: Annotated[Optional[bool], setting_option(
        TrainConfig, "keep_only_last_checkpoint", "--keep-only-last-checkpoint/--keep-all-checkpoints")] = None,
    keep_interval: Annotated[Optional[int], setting_option(TrainConfig, "keep_interval", "--keep-interval")] = None,
    checkpoints_total_limit: Annotated[Optional[int], setting_option(
        TrainConfig, "checkpoints_total_limit", "--checkpoints-total-limit")] = None,
    resume_from_checkpoint: Annotated[Optional[str], setting_option(
        TrainConfig, "resume_from_checkpoint", "--resume-from-checkpoint")] = None,
    report_to: Annotated[Optional[str], setting_option(TrainConfig, "report_to", "--report-to")] = None,
    log_every: Annotated[Optional[int], setting_option(TrainConfig, "log_every", "--log-every")] = None,
) -> None:
    """Train the Diverse Person model: denoising + mask + localization losses on a person dataset.

    Every setting is also a key of the train table in dp.toml; flags win over the environment and the TOML file.
    Multi-GPU: `accelerate launch -m dp_cli train ...` or `torchrun --nproc_per_node N -m dp_cli train ...`.
    The seed's spellings of the flags (`--pretrained_model_hf`, `--MAX_REFERENCE_ATTRIBUTE_NUM`, ...) work too.
    """

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
