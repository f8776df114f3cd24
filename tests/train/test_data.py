"""Training examples: attributes, references, masks, token positions, augmentation, skipped files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from dp_cli.errors import DataError
from dp_cli.data.reference import training_reference
from dp_cli.data.loading import load_dataset as load_person_dataset
from dp_cli.train.data import ReferenceSpec, TrainDataset, scan_split

HEIGHT, WIDTH = 64, 32
TYPES = ("hair", "uppercloth", "bottomcloth")


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    from transformers import CLIPTokenizer

    from dp_models.tiny import write_tiny_tokenizer

    return CLIPTokenizer.from_pretrained(write_tiny_tokenizer(tmp_path_factory.mktemp("tok")))


def make(root: Path, tokenizer, **kw) -> TrainDataset:
    ds = load_person_dataset(root)
    scan = scan_split(ds, "train", strict=kw.pop("strict", False), need_parsing=True)
    opts = dict(types=TYPES, size=(HEIGHT, WIDTH), max_attributes=3, reference=ReferenceSpec(32, (0.5,) * 3, (0.5,) * 3),
                seed=3)
    opts.update(kw)
    return TrainDataset(ds, scan.records, tokenizer, **opts)


def test_example_has_masks_references_and_noun_positions(tiny_dataset, tokenizer):
    data = make(tiny_dataset, tokenizer, caption_augmentation=False)
    ex = data[0]
    assert ex["pixel_values"].shape == (3, HEIGHT, WIDTH) and -1 <= ex["pixel_values"].min() <= ex["pixel_values"].max() <= 1
    assert ex["ref_pixel_values"].shape == (3, 3, 32, 32)
    assert ex["attr_valid"].tolist() == [True, True, True]
    tokens = tokenizer.convert_ids_to_tokens(ex["input_ids"].tolist())
    nouns = [tokens[p].replace("</w>", "") for p in ex["token_positions"].tolist()]
    assert nouns in (["hair", "shirt", "pants"], ["hair", "t-shirt", "jeans"]) or nouns[0] == "hair"
    parsing = np.asarray(Image.open(tiny_dataset / "parsing" / "p000.png"))
    assert torch.equal(ex["attr_masks"][0].bool(), torch.from_numpy(parsing == 2))  # hair mask at image size
    assert torch.equal(ex["attr_masks"][2].bool(), torch.from_numpy(parsing == 6))


def test_reference_is_the_box_with_noise_outside_the_mask():
    img = np.zeros((20, 10, 3), dtype=np.uint8)
    img[5:10, 2:8] = 255
    mask = np.zeros((20, 10), dtype=bool)
    mask[5:10, 2:8] = True
    mask[9, 2] = False  # one pixel of the box outside the mask
    ref = np.asarray(training_reference(Image.fromarray(img), mask, np.random.default_rng(0)))
    assert ref.shape == (5, 6, 3)
    assert (ref[mask[5:10, 2:8]] == 255).all()
    assert not (ref[4, 0] == 255).all()  # replaced by noise


def test_caption_augmentation_drops_adjectives_of_referenced_phrases(tiny_dataset, tokenizer):
    data = make(tiny_dataset, tokenizer, caption_augmentation=True, caption_augmentation_prob=1.0)
    ex = data[1]
    text = tokenizer.decode(ex["input_ids"], skip_special_tokens=True)
    rec = data.records[1]
    colours = {w for c in rec.captions for w in c.lower().replace(",", "").split()} & {"red", "blue", "green", "yellow", "white", "brown", "grey"}
    assert not (colours & set(text.split())) - {"black"}, text  # only the unreferenced shoes keep a colour
    assert ex["attr_valid"].all()


def test_examples_are_deterministic_per_seed_epoch_index(tiny_dataset, tokenizer):
    a, b = make(tiny_dataset, tokenizer), make(tiny_dataset, tokenizer)
    for k in ("input_ids", "ref_pixel_values", "token_positions"):
        assert torch.equal(a[2][k], b[2][k])
    b.set_epoch(1)
    assert any(not torch.equal(a[i]["input_ids"], b[i]["input_ids"]) for i in range(8))


def test_uncondition_gives_empty_caption_without_attributes(tiny_dataset, tokenizer):
    ex = make(tiny_dataset, tokenizer, uncondition_prob=1.0)[0]
    assert tokenizer.decode(ex["input_ids"], skip_special_tokens=True).strip() == ""
    assert not ex["attr_valid"].any() and (ex["token_positions"] == -1).all()


def test_missing_and_corrupt_files_are_skipped_and_counted(tmp_path, tokenizer, dataset_writer):
    root = dataset_writer(tmp_path / "ds", n=6)
    (root / "images" / "p001.png").unlink()
    (root / "parsing" / "p002.png").write_bytes(b"not a png")
    ds = load_person_dataset(root)
    scan = scan_split(ds, "train", strict=False, need_parsing=True)
    assert len(scan.records) == 4 and sorted(r for r, _ in scan.skipped) == ["p001", "p002"]
    with pytest.raises(DataError, match="p001"):
        scan_split(ds, "train", strict=True, need_parsing=True)


def test_a_colour_parsing_map_is_skipped_as_edit_and_eval_reject_it(tmp_path, tokenizer, dataset_writer):
    """Training reads images and maps with data.images' readers: an RGB map is not converted to grey labels."""
    root = dataset_writer(tmp_path / "ds", n=5)
    labels = np.asarray(Image.open(root / "parsing" / "p003.png"))
    Image.fromarray(np.stack([labels] * 3, -1)).save(root / "parsing" / "p003.png")
    ds = load_person_dataset(root)
    scan = scan_split(ds, "train", strict=False, need_parsing=True)
    assert [r for r, _ in scan.skipped] == ["p003"] and "not a label map" in scan.skipped[0][1]
    with pytest.raises(DataError, match="p003.*not a label map"):
        scan_split(ds, "train", strict=True, need_parsing=True)
    data = TrainDataset(ds, ds.split("train"), tokenizer, types=TYPES, size=(HEIGHT, WIDTH), max_attributes=3,
                        reference=ReferenceSpec(32, (0.5,) * 3, (0.5,) * 3), seed=3)  # unscanned: found at load
    assert data[3]["skipped"] == "p003" and data[3]["index"].item() == 4
    image, parsing = data.load(*data.paths(0))
    assert image.mode == "RGB" and parsing.dtype == np.uint8 and parsing.shape == (image.height, image.width)


def test_a_file_that_breaks_after_the_scan_is_named_in_the_batch_from_a_worker(tmp_path, tokenizer, dataset_writer):
    """Skips found while training travel with the batch: a DataLoader worker's own dataset copy never reaches
    the main process, so a count kept there would stay 0."""
    root = dataset_writer(tmp_path / "ds", n=4)
    data = make(root, tokenizer)
    (root / "images" / "p001.png").write_bytes(b"broken after the scan")
    loader = torch.utils.data.DataLoader(data, batch_size=4, num_workers=1, persistent_workers=True)
    for epoch in range(2):
        data.set_epoch(epoch)
        batch = next(iter(loader))
        assert [n for n in batch["skipped"] if n] == ["p001"]  # example 1 fell through to the next record
        assert batch["input_ids"].shape[0] == 4


def test_dataset_without_parsing_fails_only_when_losses_need_it(tmp_path, dataset_writer):
    root = dataset_writer(tmp_path / "ds", n=4, parsing=False)
    ds = load_person_dataset(root)
    with pytest.raises(DataError, match="no parsing maps"):
        scan_split(ds, "train", strict=False, need_parsing=True)
    assert scan_split(ds, "train", strict=False, need_parsing=False).without_parsing == 4


def test_images_without_parsing_still_train_the_denoiser(tmp_path, tokenizer, dataset_writer):
    root = dataset_writer(tmp_path / "ds", n=4)
    rows = [json.loads(line) for line in (root / "annotations.jsonl").read_text().splitlines()]
    rows[0].pop("parsing")
    (root / "annotations.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    data = make(root, tokenizer)
    ex = data[0]
    assert not ex["attr_valid"].any() and ex["pixel_values"].shape == (3, HEIGHT, WIDTH)


def test_missing_dataset_and_split(tmp_path, tiny_dataset):
    with pytest.raises(DataError, match="not found"):
        load_person_dataset(tmp_path / "nope")
    with pytest.raises(DataError, match="no images in split 'test'"):
        scan_split(load_person_dataset(tiny_dataset), "test", strict=False, need_parsing=True)


def test_latent_cache_is_reused_and_rebuilt_when_the_vae_changes(tiny_model, tiny_dataset, tokenizer, tmp_path):
    from diffusers import AutoencoderKL

    from dp_cli.train.data import load_or_build_latent_cache
    from dp_cli.train.loop import _vae_fingerprint

    vae = AutoencoderKL.from_pretrained(tiny_model / "sd" / "vae")
    data = make(tiny_dataset, tokenizer)
    dists, path, built = load_or_build_latent_cache(vae, data, tmp_path, _vae_fingerprint(vae), torch.device("cpu"))
    assert built and dists.shape == (16, 8, HEIGHT // 4, WIDTH // 4)
    again, path2, built2 = load_or_build_latent_cache(vae, data, tmp_path, _vae_fingerprint(vae), torch.device("cpu"))
    assert not built2 and path2 == path and torch.equal(again, dists)
    with torch.no_grad():
        next(vae.parameters()).add_(0.01)
    _, path3, built3 = load_or_build_latent_cache(vae, data, tmp_path, _vae_fingerprint(vae), torch.device("cpu"))
    assert built3 and path3 != path


def test_with_a_latent_cache_examples_carry_latents_not_pixels(tiny_dataset, tokenizer):
    plain = make(tiny_dataset, tokenizer)
    cached = make(tiny_dataset, tokenizer, latent_cache=torch.randn(len(plain), 8, HEIGHT // 4, WIDTH // 4))
    a, b = plain[1], cached[1]
    assert "pixel_values" in a and "pixel_values" not in b and torch.equal(b["latent_dist"], cached.latent_cache[1])
    assert set(a) - {"pixel_values"} == set(b) - {"latent_dist"}
    assert all(torch.equal(a[k], b[k]) for k in set(a) - {"pixel_values", "skipped"})  # the rest is the same example
    assert a["skipped"] == b["skipped"] == ""
    flipped = make(tiny_dataset, tokenizer, random_flip=True, latent_cache=cached.latent_cache)
    examples = [flipped[i] for i in range(len(flipped))]
    assert all(("pixel_values" in ex) != ("latent_dist" in ex) for ex in examples)  # a flipped image: its pixels
    assert any("pixel_values" in ex for ex in examples) and any("latent_dist" in ex for ex in examples)


def test_decoded_images_and_tokens_are_cached_with_the_same_examples(tmp_path, tokenizer, dataset_writer,
                                                                    monkeypatch):
    """The main process keeps decoded files and tokenized captions; examples are those of a dataset that
    keeps nothing, epoch after epoch, and a cached record is not read from disk again."""
    import dp_cli.train.data as data_module

    root = dataset_writer(tmp_path / "ds", n=6)
    cached = make(root, tokenizer, reference_augmentation=True)
    monkeypatch.setattr(data_module, "DECODED_CACHE_BYTES", 0)
    monkeypatch.setattr(data_module, "TOKEN_CACHE_ENTRIES", 0)
    plain = make(root, tokenizer, reference_augmentation=True)
    for epoch in range(3):
        cached.set_epoch(epoch)
        plain.set_epoch(epoch)
        for i in range(len(plain)):
            a, b = cached[i], plain[i]
            assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a if torch.is_tensor(a[k]))
    assert len(cached._decoded) == 6 and not plain._decoded and cached._tokens and not plain._tokens
    (root / "images" / "p001.png").write_bytes(b"broken after it was cached")
    assert cached[1]["skipped"] == "" and plain[1]["skipped"] == "p001"


def test_loader_workers_keep_no_caches(tmp_path, tokenizer, dataset_writer, monkeypatch):
    import dp_cli.train.data as data_module

    data = make(dataset_writer(tmp_path / "ds", n=4), tokenizer)
    monkeypatch.setattr(data_module, "get_worker_info", lambda: object())  # as inside a DataLoader worker
    data[0]
    assert not data._decoded and not data._tokens
