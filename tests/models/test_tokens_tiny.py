"""The tiny pretrained folder loads through the user path; noun tokens are flagged at the right place."""

from __future__ import annotations

import torch

from dp_cli.data.attributes import find_nouns
from dp_models.tiny import tiny_vocab_words
from dp_models.tokens import flag_noun_tokens


def test_tiny_folder_loads_with_plain_from_pretrained(tiny_dir):
    from diffusers import AutoencoderKL, DDPMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPImageProcessor, CLIPVisionModelWithProjection

    pipe = StableDiffusionPipeline.from_pretrained(tiny_dir / "sd", safety_checker=None)
    assert isinstance(pipe.unet, UNet2DConditionModel) and isinstance(pipe.vae, AutoencoderKL)
    assert isinstance(pipe.scheduler, DDPMScheduler)
    assert pipe.text_encoder.config.vocab_size == len(pipe.tokenizer)
    assert pipe.unet.config.cross_attention_dim == pipe.text_encoder.config.hidden_size
    vision = CLIPVisionModelWithProjection.from_pretrained(tiny_dir / "clip-vision")
    proc = CLIPImageProcessor.from_pretrained(tiny_dir / "clip-vision")
    assert proc.crop_size["height"] == vision.config.image_size == 32
    assert not (tiny_dir / "sd" / "tokenizer" / "tokenizer.json").exists()  # SD-1.5's own layout


def test_tokenizer_round_trip_and_known_words(tokenizer):
    caption = "A woman with long black hair is wearing a dark-blue T-shirt and grey pants."
    ids = tokenizer(caption).input_ids
    decoded = tokenizer.decode(ids, skip_special_tokens=True)
    assert decoded == "a woman with long black hair is wearing a dark - blue t - shirt and grey pants ."
    assert tokenizer.unk_token_id not in ids[1:-1]
    for word in tiny_vocab_words():
        pieces = tokenizer(word, add_special_tokens=False).input_ids
        assert len(pieces) == len(tokenizer.tokenize(word))
        if word.isalpha():
            assert len(pieces) == 1, word
    unknown = tokenizer("zqxv", add_special_tokens=False).input_ids
    assert len(unknown) >= 2 and tokenizer.unk_token_id not in unknown  # falls back to characters


def test_flag_noun_tokens_positions(tokenizer):
    captions = ["A man in a red T-shirt and blue jeans.", "A lady with gold hair."]
    spans = [[(m.start, m.end) for m in find_nouns(c)] for c in captions]
    ids, pos = flag_noun_tokens(tokenizer, captions, spans, max_length=20, max_attributes=3)
    assert ids.shape == (2, 20) and pos.shape == (2, 3) and pos.dtype == torch.long
    tokens = [tokenizer.convert_ids_to_tokens(row) for row in ids.tolist()]
    assert [tokens[0][p] for p in pos[0, :2]] == ["shirt</w>", "jeans</w>"]
    assert tokens[1][pos[1, 0]] == "hair</w>"
    assert pos[0, 2] == -1 and pos[1, 1:].tolist() == [-1, -1]


def test_flag_noun_tokens_truncation_and_limit(tokenizer):
    caption = "A man in a red shirt and blue jeans and black shoes."
    spans = [[(m.start, m.end) for m in find_nouns(caption)]]
    ids, pos = flag_noun_tokens(tokenizer, [caption], spans, max_length=9, max_attributes=2)
    # <sot> a man in a red shirt and <eot>: shirt survives, jeans is truncated away
    assert pos.tolist() == [[6, -1]]
    assert ids[0, -1].item() == tokenizer.eos_token_id


def test_prefix_fallback_agrees_with_offsets(tokenizer):
    from dp_models.tokens import _position_from_prefix

    captions = ["A man in a red T-shirt and blue jeans.", "A lady with gold hair and a black skirt."]
    spans = [[(m.start, m.end) for m in find_nouns(c)] for c in captions]
    _, pos = flag_noun_tokens(tokenizer, captions, spans, max_length=20)
    for b, caption in enumerate(captions):
        assert [_position_from_prefix(tokenizer, caption, s, 20) for s in spans[b]] == pos[b, :len(spans[b])].tolist()
    assert _position_from_prefix(tokenizer, captions[0], spans[0][1], 8) == -1  # truncated away
