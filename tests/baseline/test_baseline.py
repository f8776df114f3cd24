"""dp baseline: the retrieval baseline trained on original vs grown data (issue 9)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from dp_cli.app import app
from dp_cli.baseline.config import BaselineConfig
from dp_cli.baseline.data import generated_items, train_items
from dp_cli.baseline.losses import itc_loss, sdm_loss
from dp_cli.baseline.trainer import encode_images, encode_texts
from dp_cli.data.formats.native import load_native
from dp_cli.export import load_generated


@pytest.fixture(scope="module")
def toy(tmp_path_factory) -> Path:
    from dp_cli.toy.world import generate_world

    root = tmp_path_factory.mktemp("toy") / "world"
    generate_world(root, persons=12, seed=3, height=64, width=32, images_per_person=2, test_fraction=0.34,
                   catalog_per_type=2)
    return root


def _fake_edits(toy: Path, out: Path, n_variants: int = 2) -> tuple[Path, Path]:
    """Edited images = copies of train images (two per variant), with annotations."""
    ds = load_native(toy)
    train = ds.split("train")
    out.mkdir(parents=True, exist_ok=True)
    edits, anns = [], []
    for v in range(n_variants):
        person = [r for r in train if r.person_id == train[v * 2].person_id][:2]
        for k, rec in enumerate(person):
            eid = f"{rec.id}__v{v}"
            (out / "images").mkdir(exist_ok=True)
            shutil.copy(ds.image_path(rec), out / "images" / f"{eid}.png")
            edits.append({"id": eid, "image": f"images/{eid}.png", "source_id": rec.id,
                          "variant": f"{rec.person_id}__v{v}", "base_description": rec.captions[0],
                          "reference_attribute_list": [{"type": "uppercloth", "label": "white shirt"}]})
            anns.append({"key": eid, "id": eid, "description": f"A person in a white shirt, view {k}."})
    (out / "edits.jsonl").write_text("".join(json.dumps(e) + "\n" for e in edits))
    (out / "annotations.jsonl").write_text("".join(json.dumps(a) + "\n" for a in anns))
    return out / "edits.jsonl", out / "annotations.jsonl"


def test_sdm_prefers_matching_pairs_and_counts_same_person_positives():
    torch.manual_seed(0)
    feats = torch.randn(4, 8)
    pids = torch.tensor([0, 1, 2, 3])
    matched = sdm_loss(feats, feats, pids, 50.0)
    shuffled = sdm_loss(feats, feats[[1, 0, 3, 2]], pids, 50.0)
    assert matched < shuffled
    # two images of one person: pairing them crosswise is no longer penalised as hard
    same = torch.tensor([0, 0, 2, 3])
    crossed = feats[[1, 0, 2, 3]]
    assert sdm_loss(feats, crossed, same, 50.0) < sdm_loss(feats, crossed, pids, 50.0)


def test_itc_matches_transformers_clip_loss():
    from transformers.models.clip.modeling_clip import image_text_contrastive_loss as clip_loss

    torch.manual_seed(1)
    img, txt = torch.randn(5, 8), torch.randn(5, 8)
    logits = 20.0 * torch.nn.functional.normalize(txt, dim=-1) @ torch.nn.functional.normalize(img, dim=-1).t()
    assert torch.allclose(itc_loss(img, txt, 20.0), clip_loss(logits), atol=1e-6)


def test_training_sets_differ_by_exactly_the_generated_records(toy, tmp_path):
    edits, anns = _fake_edits(toy, tmp_path / "edits")
    ds = load_native(toy)
    gen = generated_items(load_generated(edits, ds, anns), ds)
    original, grown = train_items(ds), train_items(ds, gen)
    assert grown[:len(original)] == original
    assert grown[len(original):] == gen and len(gen) == 4
    new_ids = {g.person_id for g in gen}
    assert len(new_ids) == 2 and min(new_ids) == max(r.person_id for r in ds.records) + 1


def test_presets_fill_only_unset_keys():
    cfg = BaselineConfig(preset="irra", epochs=2)
    assert (cfg.size, cfg.batch_size, cfg.epochs, cfg.clip_model) == ((384, 128), 64, 2, "openai/clip-vit-base-patch16")


@pytest.mark.slow
def test_no_generated_records_gives_exactly_zero_gain_and_same_metrics_code(toy, tmp_path):
    out = tmp_path / "runs"
    result = CliRunner().invoke(app, ["--json", "baseline", "--dataset", str(toy), "--epochs", "1",
                                      "--output-dir", str(out), "--seed", "5"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert [(r["name"], r["seed"]) for r in report["runs"]] == [("original", 5), ("grown", 5)]
    assert set(report["gain"]) == {"R1", "R5", "R10", "mAP", "mINP"}
    assert all(v == 0.0 for v in report["gain"].values()), report
    assert report["runs"][0]["metrics"] == report["runs"][1]["metrics"]
    # the reported numbers are dp eval's retrieval metrics on the saved model's embeddings
    _check_metrics_recomputed(toy, Path(report["runs"][0]["model_dir"]), report["runs"][0]["metrics"])


def _check_metrics_recomputed(toy: Path, model_dir: Path, metrics: dict) -> None:
    from transformers import CLIPModel, CLIPTokenizer

    from dp_cli.baseline.data import load_image
    from dp_cli.eval.retrieval import retrieval_metrics

    model, tok = CLIPModel.from_pretrained(model_dir).eval(), CLIPTokenizer.from_pretrained(model_dir)
    test = [r for r in load_native(toy).records if r.split == "test"]
    with torch.no_grad():
        g = encode_images(model, torch.stack([load_image(toy / r.image, (64, 32)) for r in test]))
        caps = [(c, r.person_id) for r in test for c in r.captions]
        t = tok([c for c, _ in caps], padding="max_length", truncation=True, max_length=48, return_tensors="pt")
        q = encode_texts(model, t["input_ids"], t["attention_mask"])
    m = retrieval_metrics(q.numpy(), [p for _, p in caps], g.numpy(), [r.person_id for r in test])
    assert np.isclose(m.rank[1], metrics["R1"], atol=1e-4) and np.isclose(m.mAP, metrics["mAP"], atol=1e-4)


@pytest.mark.slow
def test_grown_run_trains_on_more_records(toy, tmp_path):
    edits, anns = _fake_edits(toy, tmp_path / "edits")
    result = CliRunner().invoke(app, ["--json", "baseline", "--dataset", str(toy), "--edits", str(edits),
                                      "--annotations", str(anns), "--epochs", "1", "--output-dir",
                                      str(tmp_path / "runs")])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout.strip().splitlines()[-1])
    orig, grown = report["runs"]
    assert grown["train_items"] == orig["train_items"] + 4
    assert grown["train_persons"] == orig["train_persons"] + 2
    assert json.loads((tmp_path / "runs" / "results.json").read_text())["generated_records"] == 4


@pytest.mark.parametrize("args, message, code", [
    (["--epochs", "0"], "epochs", 2),  # a bad option value: a usage error
    (["--image-size", "12xq"], "image size must be HxW", 2),
    (["--annotations", "x.jsonl"], "--annotations given without --edits", 2),  # options that need each other
    (["--runs", "grown"], "--runs grown needs generated records", 2),
])
def test_bad_settings_are_one_line_errors(toy, tmp_path, args, message, code):
    result = CliRunner().invoke(app, ["baseline", "--dataset", str(toy), "--output-dir", str(tmp_path), *args])
    assert result.exit_code == code
    assert message in result.output and "Traceback" not in result.output


def test_dataset_without_test_split_is_refused(toy, tmp_path):
    ds = tmp_path / "trainonly"
    shutil.copytree(toy, ds)
    rows = [json.loads(line) for line in (ds / "annotations.jsonl").read_text().splitlines()]
    (ds / "annotations.jsonl").write_text("".join(json.dumps({**r, "split": "train"}) + "\n" for r in rows))
    result = CliRunner().invoke(app, ["baseline", "--dataset", str(ds)])
    assert result.exit_code == 1 and "needs both a train and a test split" in result.output


def test_missing_edits_or_annotations_name_the_file_and_the_fix(toy, tmp_path):
    runner = CliRunner()
    missing = runner.invoke(app, ["baseline", "--dataset", str(toy), "--edits", str(tmp_path / "nope.jsonl")])
    assert missing.exit_code == 1 and "nope.jsonl: edits file not found" in missing.output
    edits, anns = _fake_edits(toy, tmp_path / "edits")
    anns.unlink()
    result = runner.invoke(app, ["baseline", "--dataset", str(toy), "--edits", str(edits)])
    assert result.exit_code == 1 and "annotations.jsonl: annotations not found" in result.output
    assert "dp annotate --input" in result.output and "--use-base-description" not in result.output
    assert "Traceback" not in result.output and not (tmp_path / "baseline-runs").exists()


def test_clip_model_folder_that_does_not_exist_fails_before_training(toy, tmp_path):
    result = CliRunner().invoke(app, ["baseline", "--dataset", str(toy), "--output-dir", str(tmp_path / "runs"),
                                      "--clip-model", str(tmp_path / "no-clip")])
    assert result.exit_code == 1 and "cannot load a CLIP model" in result.output
    assert "does not exist" in result.output and "Repo id" not in result.output
    assert not (tmp_path / "runs").exists()


def test_a_saved_clip_folder_loads_through_the_users_path(tmp_path):
    """--clip-model FOLDER: a CLIP model and tokenizer saved with save_pretrained come back identical (the
    loader eval uses too)."""
    from dp_cli.baseline.trainer import load_clip

    cfg = BaselineConfig()
    model, tokenizer = load_clip(cfg)  # the tiny CLIP of the toy preset
    model.save_pretrained(tmp_path / "clip")
    tokenizer.save_pretrained(tmp_path / "clip")
    loaded, tok = load_clip(cfg.model_copy(update={"clip_model": str(tmp_path / "clip")}))
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), loaded.state_dict().values()))
    text = "a woman in a red skirt"
    assert tok(text)["input_ids"] == tokenizer(text)["input_ids"]


def test_dataset_of_the_shared_data_table_or_dp_dataset_is_used(toy, tmp_path):
    ds = tmp_path / "trainonly"
    shutil.copytree(toy, ds)
    rows = [json.loads(line) for line in (ds / "annotations.jsonl").read_text().splitlines()]
    (ds / "annotations.jsonl").write_text("".join(json.dumps({**r, "split": "train"}) + "\n" for r in rows))
    result = CliRunner().invoke(app, ["baseline"], env={"DP_DATASET": str(ds), "DP_CONFIG": None})
    assert result.exit_code == 1 and "needs both a train and a test split" in result.output  # it read DP_DATASET
    result = CliRunner().invoke(app, ["baseline"], env={"DP_DATASET": None, "DP_CONFIG": None})
    assert result.exit_code == 2 and "no dataset given" in result.output and "[data] dataset" in result.output


def _baseline(*args: str, **kwargs):
    return CliRunner().invoke(app, ["baseline", "--epochs", "1", *args], **kwargs)


def _runs(out: Path) -> list[tuple[str, int]]:
    return [(r["name"], r["seed"]) for r in json.loads((out / "results.json").read_text())["runs"]]


def test_a_rerun_into_the_same_folder_keeps_its_runs_and_trains_only_the_new_ones(toy, tmp_path):
    """The user's report: both runs for seeds 0 and 1, then `--runs original` into the same folder left only
    the original run in results.json. Now the folder's runs are kept, finished runs are not trained again,
    and means and gain are over everything the folder holds."""
    edits, _ = _fake_edits(toy, tmp_path / "edits")
    out = tmp_path / "bl1"
    common = ["--dataset", str(toy), "--edits", str(edits), "--output-dir", str(out)]
    first = _baseline(*common, "--seed", "0", "--seed", "1")
    assert first.exit_code == 0, first.output
    before = json.loads((out / "results.json").read_text())
    assert _runs(out) == [("original", 0), ("grown", 0), ("original", 1), ("grown", 1)]
    weights = out / "original" / "seed-0" / "model" / "model.safetensors"
    stamp = weights.stat().st_mtime_ns

    again = _baseline(*common, "--runs", "original")  # seed 0: already there
    assert again.exit_code == 0, again.output
    after = json.loads((out / "results.json").read_text())
    assert after == before and weights.stat().st_mtime_ns == stamp
    assert "not trained again: original seed 0" in " ".join(again.output.split())

    more = CliRunner().invoke(app, ["--json", "baseline", "--epochs", "1", *common, "--runs", "original",
                                    "--seed", "2"])
    assert more.exit_code == 0, more.output
    report = json.loads(more.stdout.strip().splitlines()[-1])
    assert _runs(out) == [("original", 0), ("grown", 0), ("original", 1), ("grown", 1), ("original", 2)]
    assert report["runs"] == json.loads((out / "results.json").read_text())["runs"]
    assert report["runs"][:4] == before["runs"]  # the earlier runs as they were
    originals = [r["metrics"]["R1"] for r in report["runs"] if r["name"] == "original"]
    assert np.isclose(report["mean"]["original"]["R1"], np.mean(originals))
    assert report["mean"]["grown"] == before["mean"]["grown"] and report["gain"] == before["gain"]
    assert report["gain_seeds"] == [0, 1]  # the table says which seeds each row and the gain cover
    table = " ".join(more.stderr.split())
    assert "(original: seeds 0, 1, 2; grown: seeds 0, 1; gain: seeds 0, 1," in table
    assert (out / "original" / "seed-2" / "model").is_dir() and weights.stat().st_mtime_ns == stamp


def test_a_rerun_with_other_settings_is_refused_and_changes_nothing(toy, tmp_path):
    edits, _ = _fake_edits(toy, tmp_path / "edits")
    out = tmp_path / "runs"
    assert _baseline("--dataset", str(toy), "--edits", str(edits), "--output-dir", str(out)).exit_code == 0
    saved = (out / "results.json").read_bytes()
    refused = [
        (["--dataset", str(toy), "--edits", str(edits), "--epochs", "2", "--seed", "1"], "epochs: 1 there, 2 now"),
        (["--dataset", str(toy), "--seed", "1"], "generated_records: 4 there, 0 now"),  # grown without the edits
    ]
    for args, message in refused:
        result = _baseline(*args, "--output-dir", str(out))
        assert result.exit_code == 1, result.output
        text = " ".join(result.output.split())
        assert message in text and "another --output-dir" in text and "Traceback" not in text
        assert len(result.output.strip().splitlines()) == 1
        assert (out / "results.json").read_bytes() == saved and not (out / "original" / "seed-1").exists()
    # the original runs do not depend on the edits: they may join without them
    alone = _baseline("--dataset", str(toy), "--runs", "original", "--seed", "1", "--output-dir", str(out))
    assert alone.exit_code == 0, alone.output
    assert _runs(out) == [("original", 0), ("grown", 0), ("original", 1)]
    assert json.loads((out / "results.json").read_text())["generated_records"] == 4


@pytest.mark.parametrize("text, message", [
    ('{"runs": [', "malformed JSON"),
    (json.dumps({"generated_records": 0, "runs": [], "mean": {}, "std": {}, "gain": {}}),
     "do not record the settings of their runs"),  # written before results.json held the settings
])
def test_earlier_results_that_cannot_be_merged_are_refused_and_left_as_they_are(toy, tmp_path, text, message):
    out = tmp_path / "runs"
    out.mkdir()
    (out / "results.json").write_text(text)
    result = _baseline("--dataset", str(toy), "--output-dir", str(out))
    assert result.exit_code == 1 and message in " ".join(result.output.split())
    assert "Traceback" not in result.output and (out / "results.json").read_text() == text
    assert sorted(p.name for p in out.iterdir()) == ["results.json"]


def test_results_are_written_after_each_run_and_a_rerun_trains_only_what_is_missing(toy, tmp_path, monkeypatch):
    import dp_cli.baseline.compare as compare
    from dp_cli.errors import TrainingError

    trained, real = [], compare.train_run

    def failing_grown(cfg, accelerator, items, test, seed, out_dir, name, on_step=None):
        trained.append((name, seed))
        if name == "grown":
            raise TrainingError("non-finite loss at step 0")
        return real(cfg, accelerator, items, test, seed, out_dir, name, on_step)

    monkeypatch.setattr(compare, "train_run", failing_grown)
    out = tmp_path / "runs"
    result = _baseline("--dataset", str(toy), "--output-dir", str(out))
    assert result.exit_code == 1 and "non-finite loss" in result.output
    assert _runs(out) == [("original", 0)]  # the finished run is in results.json
    monkeypatch.setattr(compare, "train_run", lambda *a, **k: trained.append((a[6], a[4])) or real(*a, **k))
    assert _baseline("--dataset", str(toy), "--output-dir", str(out)).exit_code == 0
    assert trained == [("original", 0), ("grown", 0), ("grown", 0)]
    assert _runs(out) == [("original", 0), ("grown", 0)]


def test_seed_help_says_the_option_is_repeated_not_given_several_values():
    result = CliRunner().invoke(app, ["baseline", "-h"], env={"TERMINAL_WIDTH": "200"})
    assert result.exit_code == 0
    row = next(line for line in result.output.splitlines() if "--seed" in line)
    assert "INT..." not in row and " INT " in row and "repeat: --seed 0 --seed 1" in row
