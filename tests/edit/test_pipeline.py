"""DPEditPipeline with a tiny model on the toy world: sizes, compositing, seeds, references, inputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from dp_cli.data.attributes import attribute_mask
from dp_models.edit_pipeline import SCHEDULERS, DPEditPipeline, Reference, build_edit_prompt, make_scheduler

GOLD = Reference("hair", Image.new("RGB", (24, 24), (212, 172, 52)), "gold hair")
BLUE = Reference("hair", Image.new("RGB", (24, 24), (20, 40, 220)), "blue hair")
KW = dict(num_inference_steps=2, guidance_scale=5.0, mask_dilation=2, feather=1)


def hair_mask(labels):
    return attribute_mask(labels, "hair")


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)


def test_output_has_source_size_and_outside_the_mask_is_the_source(pipe, person):
    image, labels, caption = person
    big = image.resize((45, 90), Image.BICUBIC)  # not the model resolution: resized there and back
    big_labels = np.asarray(Image.fromarray(labels.astype(np.uint8)).resize((45, 90), Image.NEAREST))
    out = pipe(big, hair_mask(big_labels), caption, [GOLD], seed=3, **KW)
    edited, used = out.images[0], np.asarray(out.masks[0]) > 0
    assert edited.size == big.size and out.masks[0].size == big.size
    assert used[hair_mask(big_labels)].all()  # the mask used covers the attribute
    src, res = np.asarray(big), np.asarray(edited)
    assert np.array_equal(res[~used], src[~used])
    assert not np.array_equal(res[used], src[used])


class OracleUNet(torch.nn.Module):
    """Predicts the noise that leads to `target` latents: a stand-in for a trained denoiser, so the edit
    inside the mask is in-distribution (another person's latents) and the decoder is fairly tested."""

    def __init__(self, unet, scheduler, target):
        super().__init__()
        self.inner, self.scheduler, self.target = unet, scheduler, target
        self.config, self.dtype = unet.config, unet.dtype

    def forward(self, x, t, encoder_hidden_states=None):
        abar = self.scheduler.alphas_cumprod[int(t)]
        eps = (x - abar.sqrt() * self.target.expand_as(x)) / (1 - abar).sqrt()
        return type("Out", (), {"sample": eps})()


def test_blended_latents_keep_the_source_latents_outside_the_mask_exactly(pipe, person):
    from dp_models.edit_pipeline import to_pixels

    image, labels, caption = person
    out = pipe(image, hair_mask(labels), caption, [GOLD], seed=3, composite=False, **KW)
    source = pipe.encode_images(to_pixels([image], pipe.resolution))
    keep = out.latent_masks.expand_as(source) == 0
    assert keep.float().mean() > 0.3
    assert torch.equal(out.latents[keep], source[keep])
    assert not torch.equal(out.latents[~keep], source[~keep])


def test_without_compositing_outside_the_mask_matches_the_vae_reconstruction(pipe, person, world):
    """The blended latents make the output outside the mask the VAE decoding of the source latents.

    The untrained tiny VAE's decoder mixes the whole image (GroupNorm statistics), so the bar is what an
    ideal blend reaches: the decoding of [source latents outside, denoised latents inside].
    """
    from dp_models.edit_pipeline import to_images, to_pixels

    image, labels, caption = person
    other = Image.open(sorted((world / "images").glob("*.png"))[-1]).convert("RGB")
    source = pipe.encode_images(to_pixels([image], pipe.resolution))
    target = pipe.encode_images(to_pixels([other], pipe.resolution))
    oracle = DPEditPipeline(pipe.model, make_scheduler("ddim", pipe.model.noise_scheduler.config))
    real_unet = pipe.model.unet
    pipe.model.unet = OracleUNet(real_unet, oracle.scheduler, target)
    try:
        out = oracle(image, hair_mask(labels), caption, [GOLD], seed=3, composite=False, **KW)
    finally:
        pipe.model.unet = real_unet
    lm = out.latent_masks.expand_as(source)
    ideal = source * (1 - lm) + target * lm
    assert torch.allclose(out.latents, ideal, atol=1e-5)
    edited, outside = np.asarray(out.images[0]), ~(np.asarray(out.masks[0]) > 0)
    assert outside.mean() > 0.3
    recon = np.asarray(to_images(pipe.decode_latents(source))[0])
    ideal_px = np.asarray(to_images(pipe.decode_latents(ideal))[0])
    assert psnr(edited[outside], ideal_px[outside]) >= 30.0
    assert psnr(edited[outside], recon[outside]) >= psnr(ideal_px[outside], recon[outside]) - 0.5
    # ... and inside, the denoiser's content (not the source) was decoded
    assert psnr(edited[~outside], ideal_px[~outside]) >= 30.0
    assert psnr(edited[~outside], recon[~outside]) < 25.0


def test_same_seed_same_image_and_batched_equals_unbatched(pipe, person):
    image, labels, caption = person
    m = hair_mask(labels)
    a = pipe(image, m, caption, [GOLD], seed=7, **KW).images[0]
    b = pipe(image, m, caption, [GOLD], seed=7, **KW).images[0]
    c = pipe(image, m, caption, [GOLD], seed=8, **KW).images[0]
    assert np.array_equal(np.asarray(a), np.asarray(b))
    assert not np.array_equal(np.asarray(a), np.asarray(c))
    batch = pipe([image, image], [m, m], [caption, caption], [[BLUE], [GOLD]], seed=[1, 7], **KW).images
    assert np.abs(np.asarray(batch[1], dtype=int) - np.asarray(a, dtype=int)).max() <= 1


def test_a_different_reference_changes_the_edited_region_only(pipe, person):
    image, labels, caption = person
    m = hair_mask(labels)
    out_a = pipe(image, m, caption, [GOLD], seed=5, delayed_conditioning=0.0, **KW)
    out_b = pipe(image, m, caption, [BLUE], seed=5, delayed_conditioning=0.0, **KW)
    used = np.asarray(out_a.masks[0]) > 0
    a, b = np.asarray(out_a.images[0], dtype=int), np.asarray(out_b.images[0], dtype=int)
    assert np.abs(a - b)[used].sum() > 0
    assert np.array_equal(a[~used], b[~used])


def test_reference_scale_extrapolates_the_references_part_of_the_prompt(pipe, person):
    """0 is the text-only prompt at every step (= delayed conditioning 1), 1 the model as trained, and a larger
    scale moves the edit further from the text-only one along the references' direction."""
    image, labels, caption = person
    m = hair_mask(labels)
    edit = lambda **kw: np.asarray(pipe(image, m, caption, [GOLD], seed=5, **KW, **kw).images[0], dtype=int)  # noqa: E731
    text_only = edit(delayed_conditioning=1.0)
    assert np.array_equal(edit(delayed_conditioning=0.0, reference_scale=0.0), text_only)
    as_trained = edit(delayed_conditioning=0.0)
    assert np.array_equal(edit(delayed_conditioning=0.0, reference_scale=1.0), as_trained)
    stronger = edit(delayed_conditioning=0.0, reference_scale=2.0)
    assert np.abs(stronger - text_only).sum() > np.abs(as_trained - text_only).sum() > 0


@pytest.mark.parametrize("name", sorted(SCHEDULERS))
def test_every_scheduler_runs_and_keeps_the_outside(pipe, person, name):
    image, labels, caption = person
    other = DPEditPipeline(pipe.model, make_scheduler(name, pipe.model.noise_scheduler.config))
    out = other(image, hair_mask(labels), caption, [GOLD], seed=1, **KW)
    used = np.asarray(out.masks[0]) > 0
    assert np.array_equal(np.asarray(out.images[0])[~used], np.asarray(image)[~used])
    assert np.isfinite(np.asarray(out.images[0], dtype=float)).all()


def test_bf16_runs(model_dir, person):
    image, labels, caption = person
    pipe16 = DPEditPipeline.from_pretrained(str(model_dir), precision="bf16")
    assert pipe16.model.unet.dtype == torch.bfloat16
    out = pipe16(image, hair_mask(labels), caption, [GOLD], seed=1, num_inference_steps=1)
    assert out.images[0].size == image.size


@pytest.mark.parametrize("change, match", [
    (dict(mask=np.zeros((10, 10), bool)), r"mask\[0\]: shape"),
    (dict(references=[Reference("wings", GOLD.image, "wings")]), "unknown attribute type 'wings'"),
    (dict(references=[GOLD, BLUE]), "given twice"),
    (dict(references=[]), "at least one reference"),
    (dict(num_inference_steps=0), "num_inference_steps=0"),
    (dict(delayed_conditioning=1.5), "delayed_conditioning=1.5"),
    (dict(reference_scale=-1.0), "reference_scale=-1.0"),
    (dict(caption="  "), "caption"),
    (dict(seed=[1, 2]), "seed: 2 given for 1"),
])
def test_inputs_are_checked_loudly(pipe, person, change, match):
    image, labels, caption = person
    args = dict(image=image, mask=hair_mask(labels), caption=caption, references=[GOLD], seed=0)
    args.update(change)
    if isinstance(args["seed"], list):
        args = dict(args, image=[image], mask=[args["mask"]], caption=[caption], references=[[GOLD]])
    args.setdefault("num_inference_steps", 2)
    with pytest.raises(ValueError, match=match):
        pipe(**args)


def test_unknown_scheduler_and_precision_name_the_value(pipe):
    with pytest.raises(ValueError, match="scheduler='heun'"):
        make_scheduler("heun", pipe.model.noise_scheduler.config)
    with pytest.raises(ValueError, match="precision='fp8'"):
        DPEditPipeline(pipe.model, pipe.scheduler, precision="fp8")


def test_prompt_drops_adjectives_binds_nouns_and_adds_missing_phrases():
    cap = "A woman with long black hair is wearing a black shirt and a red and yellow skirt."
    p = build_edit_prompt(cap, [("hair", "gold hair"), ("bottomcloth", "white skirt"), ("bag", "red backpack")])
    assert p.text == ("A woman with hair is wearing a black shirt and a skirt, carrying a red backpack.")
    assert [p.text[s:e] for s, e in p.spans] == ["hair", "skirt", "backpack"]
    assert [(b.replaced, b.added_phrase) for b in p.bindings] == [
        ("long black hair", False), ("red and yellow skirt", False), (None, True)]
    kept = build_edit_prompt(cap, [("bottomcloth", "white skirt")], keep_adjectives=True)
    assert kept.text == cap and kept.text[slice(*kept.spans[0])] == "skirt"
    added = build_edit_prompt("A man in a coat.", [("hair", "gold")])
    assert added.text == "A man in a coat, with gold hair." and added.text[slice(*added.spans[0])] == "hair"


def test_label_in_prompt_writes_the_reference_labels_over_the_replaced_phrases():
    cap = "A woman with long black hair is wearing a black shirt and a red and yellow skirt."
    p = build_edit_prompt(cap, [("bottomcloth", "white shorts"), ("hair", "gold"), ("bag", "red backpack")],
                          keep_adjectives=True, label_in_prompt=True)
    assert p.text == "A woman with gold hair is wearing a black shirt and a white shorts, carrying a red backpack."
    assert [p.text[s:e] for s, e in p.spans] == ["shorts", "hair", "backpack"]
    assert [(b.noun, b.replaced) for b in p.bindings] == [
        ("shorts", "red and yellow skirt"), ("hair", "long black hair"), ("backpack", None)]
    # a label holding another type's noun ('hood' is a hat word) does not take that reference's binding
    p = build_edit_prompt("a woman wearing a red coat and a grey hat.",
                          [("uppercloth", "black coat with a hood"), ("hat", "white cap")], label_in_prompt=True)
    assert p.text == "a woman wearing a black coat with a hood and a white cap."
    assert [p.text[s:e] for s, e in p.spans] == ["coat", "cap"]


def _count_encoded(monkeypatch, pipe) -> list[int]:
    """How many reference pictures each image-encoder call encodes."""
    enc = pipe.model.image_encoder
    seen, forward = [], enc.forward

    def counting(pixel_values, valid=None):
        seen.append(int(valid.sum()) if valid is not None else pixel_values.shape[0] * pixel_values.shape[1])
        return forward(pixel_values, valid)

    monkeypatch.setattr(enc, "forward", counting)
    return seen


def test_each_distinct_reference_is_encoded_once_and_the_edit_is_unchanged(model_dir, person, monkeypatch):
    from dp_models.image_encoder import preprocess_reference
    from dp_models.tokens import flag_noun_tokens

    image, labels, caption = person
    m = hair_mask(labels)
    gold_copy = Reference("hair", GOLD.image.copy(), "gold hair")  # the same picture in another object
    refs = [[GOLD], [gold_copy], [BLUE]]
    pipe = DPEditPipeline.from_pretrained(str(model_dir), scheduler="ddim")
    seen = _count_encoded(monkeypatch, pipe)
    prompts = [build_edit_prompt(caption, [("hair", r[0].label)]) for r in refs]
    _, _, fused = pipe.encode(prompts, refs)
    assert seen == [2]  # gold once, blue once
    # the fused embedding equals the previous computation: every image's references encoded in its own slot
    model, enc = pipe.model, pipe.model.image_encoder
    ids, positions = flag_noun_tokens(model.tokenizer, [p.text for p in prompts], [p.spans for p in prompts],
                                      max_attributes=pipe.max_attributes)
    pix = torch.zeros(3, pipe.max_attributes, 3, enc.image_size, enc.image_size)
    pix[:, 0] = preprocess_reference([r[0].image for r in refs], enc.image_size, enc.mean, enc.std)
    with torch.no_grad():
        torch.testing.assert_close(fused, model.encode_prompt(ids, pix, positions), atol=1e-6, rtol=1e-5)
    # later calls with the same pictures encode nothing; same seeds give identical images
    seen.clear()
    first = pipe([image] * 3, [m] * 3, [caption] * 3, refs, seed=[5, 5, 6], **KW).images
    again = pipe(image, m, caption, [gold_copy], seed=5, **KW).images[0]
    assert seen == []
    assert np.array_equal(np.asarray(first[0]), np.asarray(first[1]))
    assert np.array_equal(np.asarray(first[0]), np.asarray(again))
    fresh = DPEditPipeline.from_pretrained(str(model_dir), scheduler="ddim")
    alone = fresh(image, m, caption, [BLUE], seed=6, **KW).images[0]
    assert np.abs(np.asarray(alone, dtype=int) - np.asarray(first[2], dtype=int)).max() <= 1


@pytest.mark.slow  # compiling the UNet and the encoders takes about a minute on one CPU thread
def test_compiled_pipeline_gives_the_eager_edit(model_dir, person, quiet_compile_trace):
    image, labels, caption = person
    m = hair_mask(labels)
    eager = DPEditPipeline.from_pretrained(str(model_dir), scheduler="ddim")
    compiled = DPEditPipeline.from_pretrained(str(model_dir), scheduler="ddim", compile="default")
    args = ([image, image], [m, m], [caption, caption], [[GOLD], [BLUE]])
    want = eager(*args, seed=[3, 4], **KW)
    for _ in range(2):  # compiling, then the cached graphs
        got = compiled(*args, seed=[3, 4], **KW)
        torch.testing.assert_close(got.latents, want.latents, atol=1e-4, rtol=1e-4)
        for a, b in zip(got.images, want.images, strict=True):
            assert np.abs(np.asarray(a, dtype=int) - np.asarray(b, dtype=int)).max() <= 1
    assert compiled.model.unet._compiled_call_impl is not None and eager.model.unet._compiled_call_impl is None
