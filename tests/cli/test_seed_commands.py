"""The seed's commands, pasted as they are (issue 14): its spellings are hidden aliases of dp's options."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest

# Verbatim from the seed's README (shared/seed/README-2024-AAAI-DP.md, "Usage"; CI keeps shared/ beside the
# clone, so the text is embedded here rather than read from there).
SEED_TRAINING = r"""
CUDA_VISIBLE_DEVICES=0,1 accelerate launch \
  --mixed_precision=bf16 \
  train.py \
  --pretrained_model_hf runwayml/stable-diffusion-v1-5 \
  --dataset_name {DATASET_PATH} \
  --logging_dir {LOG_PATH} \
  --output_dir {OUTPUT_PATH} \
  --max_train_steps 30000 \
  --num_train_epochs 30000 \
  --train_batch_size 32 \
  --lr 1e-5 \
  --unet_lr_scale 1.0 \
  --checkpointing_steps 200 \
  --mixed_precision bf16 \
  --keep_only_last_checkpoint \
  --keep_interval 10000 \
  --seed 42 \
  --image_encoder_hf openai/clip-vit-large-patch14 \
  --img_token_num 1 \
  --MAX_REFERENCE_ATTRIBUTE_NUM 3 \
  --resolution 128 \
  --text_image_linking control \
  --disable_flashattention \
  --train_image_encoder \
  --image_encoder_trainable_layers 2 \
  --reference_attribute_types hair_uppercloth_bottomcloth \
  --mask_loss \
  --attribute_loc \
  --attribute_loc_weight 1e-3 \
  --attribute_localization_loss balanced_l1 \
  --resume_from_checkpoint latest \
"""
SEED_ANNOTATION = r"""
python annotate.py \
  --origin_path {DATA_PATH} \
  --output_path {ANNOTATION_JSONL_PATH} \
  --model "gpt-3.5-turbo" \
  --TEXT_START 0 \
  --TEXT_END -1 \
  --SLICE_STEP 500 \
"""
SEED_README = Path(__file__).resolve().parents[2].parent / "shared" / "seed" / "README-2024-AAAI-DP.md"


def seed_args(block: str, script: str, values: dict[str, str]) -> list[str]:
    """The arguments after `script` (accelerate's own flags stay accelerate's), with `values` replacing
    placeholders and hub ids."""
    words = shlex.split(block.replace("\\\n", " "))
    args = words[words.index(script) + 1:]
    return [values.get(a, a) for a in args]


def test_embedded_commands_are_the_seed_readme_s():
    if not SEED_README.exists():
        pytest.skip(f"{SEED_README} is not beside this checkout")
    text = SEED_README.read_text(encoding="utf-8")
    assert SEED_TRAINING.strip() in text and SEED_ANNOTATION.strip() in text


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    """A tiny SD-1.5 + CLIP-vision model and a tiny toy world (64x32 people, 4 train images)."""
    from dp_cli.toy.world import generate_world
    from dp_models.tiny import write_tiny_pretrained

    root = tmp_path_factory.mktemp("seed")
    write_tiny_pretrained(root / "tiny", height=64, width=32, seed=0)
    generate_world(root / "world", persons=3, seed=0, height=64, width=32, images_per_person=2, catalog_per_type=2)
    return root


def training_args(toy: Path, out: Path) -> list[str]:
    values = {"runwayml/stable-diffusion-v1-5": str(toy / "tiny" / "sd"),
              "openai/clip-vit-large-patch14": str(toy / "tiny" / "clip-vision"),
              "{DATASET_PATH}": str(toy / "world"), "{LOG_PATH}": str(out / "logs"), "{OUTPUT_PATH}": str(out),
              "30000": "2"}  # --max_train_steps 30000 (and --num_train_epochs) -> 2
    return seed_args(SEED_TRAINING, "train.py", values)


def test_seed_training_flags_resolve_to_dp_settings(dp, toy, tmp_path, monkeypatch):
    """Every flag of the seed's command lands on the dp setting it names (nothing runs)."""
    import dp_cli.commands.train as train_command

    seen = []
    monkeypatch.setattr(train_command, "_run", seen.append)
    out = tmp_path / "run"
    result = dp("train", *training_args(toy, out))
    assert result.exit_code == 0, result.output
    cfg = seen[0]
    assert (cfg.pretrained_model, cfg.image_encoder) == (str(toy / "tiny/sd"), str(toy / "tiny/clip-vision"))
    assert (cfg.dataset, cfg.logging_dir, cfg.output_dir) == (toy / "world", out / "logs", out)
    assert (cfg.max_train_steps, cfg.num_train_epochs, cfg.train_batch_size) == (2, 2, 32)
    assert (cfg.lr, cfg.unet_lr_scale, cfg.checkpointing_steps, cfg.mixed_precision) == (1e-5, 1.0, 200, "bf16")
    assert (cfg.keep_only_last_checkpoint, cfg.keep_interval, cfg.seed, cfg.img_token_num) == (True, 10000, 42, 1)
    assert (cfg.max_reference_attributes, cfg.resolution, cfg.text_image_linking) == (3, "128", "control")
    assert (cfg.disable_flash_attention, cfg.train_image_encoder, cfg.image_encoder_trainable_layers) == (True, True, 2)
    assert cfg.types == ("hair", "uppercloth", "bottomcloth")
    assert (cfg.mask_loss, cfg.attribute_loc, cfg.attribute_loc_weight) == (True, True, 1e-3)
    assert (cfg.attribute_localization_loss, cfg.resume_from_checkpoint) == ("balanced_l1", "latest")


# about 7 s on the tiny model (2 steps, the seed's batch 32 over 4 images): not marked slow
def test_seed_training_command_trains(dp, toy, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    out = tmp_path / "run"
    result = dp("--json", "train", *training_args(toy, out))
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["steps"] == 2 and summary["resumed_from"] is None
    saved = json.loads((out / "model" / "dp_config.json").read_text())
    assert saved["resolution"] == [128, 128] and saved["max_reference_attributes"] == 3
    assert saved["attribute_types"] == ["hair", "uppercloth", "bottomcloth"] and saved["mask_loss"] is True


def test_seed_annotation_command_annotates(dp, tmp_path):
    rows = [{"id": f"p{i}__v0", "base_description": f"A man {i} is wearing a black shirt and grey pants.",
             "reference_attribute_list": [{"type": "uppercloth", "label": "red jacket"}]} for i in range(3)]
    edits = tmp_path / "edits.jsonl"
    edits.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    out = tmp_path / "annotations.jsonl"
    args = seed_args(SEED_ANNOTATION, "annotate.py", {"{DATA_PATH}": str(edits), "{ANNOTATION_JSONL_PATH}": str(out)})
    result = dp("annotate", *args, "--backend", "offline")  # the seed asks OpenAI; no key in tests
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["id"] for r in lines] == ["p0__v0", "p1__v0", "p2__v0"]
    assert all("red jacket" in r["description"] for r in lines)


@pytest.mark.parametrize("name", ["train", "annotate", "edit"])
def test_seed_spellings_are_hidden_from_help(name):
    import typer

    from dp_cli.app import app

    command = typer.main.get_command(app).commands[name]
    for param in command.params:
        spellings = param.opts + param.secondary_opts
        if any("_" in s or s.lstrip("-").isupper() for s in spellings):
            assert param.hidden, spellings
        else:
            assert not param.hidden, spellings


def test_alias_and_dp_option_with_different_values_is_a_usage_error(dp, tmp_path):
    result = dp("annotate", "--origin_path", tmp_path / "a.jsonl", "--input", tmp_path / "b.jsonl",
                "--backend", "offline")
    assert result.exit_code == 2, result.output
    err = result.stderr.strip()
    assert len(err.splitlines()) == 1 and "--origin_path" in err and "--input" in err, err


def test_bad_value_of_an_alias_names_the_alias(dp):
    result = dp("train", "--MAX_REFERENCE_ATTRIBUTE_NUM", "three")
    assert result.exit_code == 2 and "--MAX_REFERENCE_ATTRIBUTE_NUM" in result.stderr, result.output
