"""A complete tiny SD-1.5 + CLIP-vision model written from configs in code (tests, demo, toy world).

The folder layout is the one users have on disk for the real models, and everything is loaded back
through the same `from_pretrained` calls, so tests exercise the user path.
"""

from __future__ import annotations

import functools
import json
import shutil
import tempfile
from pathlib import Path

from dp_cli.data.attributes import ATTRIBUTE_TYPES

COLOURS = (
    "black", "white", "grey", "gray", "red", "green", "blue", "yellow", "orange", "purple", "pink", "brown",
    "beige", "navy", "dark", "light", "gold", "golden", "silver", "khaki", "cyan", "teal", "maroon", "cream",
    "blond", "blonde", "olive", "tan", "violet", "magenta", "turquoise", "colored", "coloured", "bright",
)
CAPTION_WORDS = (
    "a", "an", "the", "his", "her", "their", "its", "of", "with", "in", "on", "at", "and", "or", "is", "are",
    "has", "have", "wearing", "wears", "wear", "carrying", "carries", "holding", "dressed", "over", "under",
    "to", "by", "pair", "some", "who", "while", "also", "he", "she", "they", "man", "woman", "person", "lady",
    "girl", "boy", "guy", "that", "which", "for", "from", "plus", "as", "into", "long", "short", "medium",
    "curly", "straight", "wavy", "striped", "stripes", "plain", "checked", "checkered", "dotted", "dots",
    "patterned", "pattern", "sleeve", "sleeves", "sleeved", "walking", "standing", "looking", "young", "old",
    "this", "there", "was", "be", "it", "one", "hand", "shoulder", "back", "front", "side", "down", "up",
    "complemented", "seen", "shown", "appears", "tied", "loose", "tight", "slim", "wide", "big", "small",
    "photo", "picture", "image", "product", "catalog",
)


def tiny_vocab_words() -> list[str]:
    """Words the tiny tokenizer knows as whole tokens (colours, attribute nouns, common caption words)."""
    nouns = [part for t in ATTRIBUTE_TYPES.values() for noun in t.nouns for part in noun.replace("-", " ").split()]
    return sorted(set(COLOURS) | set(CAPTION_WORDS) | set(nouns))


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP byte -> printable unicode table."""
    bs = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, (chr(c) for c in cs)))


def tiny_bpe(words: list[str] | None = None) -> tuple[dict[str, int], list[str]]:
    """A CLIP-style byte-level BPE (vocab, merges) where every word of `words` is one token."""
    vocab_list, merges = _train_bpe(tuple(sorted(set(words or tiny_vocab_words()))))
    return {tok: i for i, tok in enumerate(vocab_list)}, list(merges)


@functools.lru_cache(maxsize=4)
def _train_bpe(words: tuple[str, ...]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Plain BPE training, most frequent pair first, ties broken by the pair's text: the same every run.

    (The `tokenizers` trainer breaks ties differently from run to run, which made tiny models
    tokenize the same caption differently in one process.) Encoding a training word replays its
    merges, so every word ends as one token.
    """
    byte_map = _bytes_to_unicode()
    seqs = []
    for word in words:
        chars = [byte_map[b] for b in word.encode("utf-8")]
        chars[-1] += "</w>"
        seqs.append(chars)
    merges: list[str] = []
    while True:
        counts: dict[tuple[str, str], int] = {}
        for seq in seqs:
            for pair in zip(seq, seq[1:]):
                counts[pair] = counts.get(pair, 0) + 1
        if not counts:
            break
        best = min(counts, key=lambda p: (-counts[p], p))
        merges.append(f"{best[0]} {best[1]}")
        seqs = [_merge_pair(seq, best) for seq in seqs]
    base = list(byte_map.values())
    vocab_list = base + [c + "</w>" for c in base]
    seen = set(vocab_list)
    for merge in merges:
        token = merge.replace(" ", "")
        if token not in seen:
            seen.add(token)
            vocab_list.append(token)
    vocab_list += ["<|startoftext|>", "<|endoftext|>"]
    return tuple(vocab_list), tuple(merges)


def _merge_pair(seq: list[str], pair: tuple[str, str]) -> list[str]:
    if len(seq) < 2:
        return seq
    out, i = [], 0
    while i < len(seq):
        if i + 1 < len(seq) and seq[i] == pair[0] and seq[i + 1] == pair[1]:
            out.append(seq[i] + seq[i + 1])
            i += 2
        else:
            out.append(seq[i])
            i += 1
    return out


def write_tiny_tokenizer(out_dir: str | Path, max_length: int = 77) -> Path:
    """Write vocab.json, merges.txt and tokenizer_config.json of the tiny CLIP tokenizer."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    vocab, merges = tiny_bpe()
    (out / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    (out / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8")
    config = {"tokenizer_class": "CLIPTokenizer", "model_max_length": max_length, "bos_token": "<|startoftext|>",
              "eos_token": "<|endoftext|>", "unk_token": "<|endoftext|>", "pad_token": "<|endoftext|>",
              "do_lower_case": True}
    (out / "tokenizer_config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
    return out


def _tiny_unet(sample_size: int):
    from diffusers import UNet2DConditionModel

    # 3 down + mid + 3 up cross-attention blocks: the 7 blocks of SD-1.5 that carry cross-attention.
    return UNet2DConditionModel(
        sample_size=sample_size, in_channels=4, out_channels=4, layers_per_block=1,
        block_out_channels=(32, 32, 64), norm_num_groups=8, cross_attention_dim=32, attention_head_dim=8,
        down_block_types=("CrossAttnDownBlock2D",) * 3, up_block_types=("CrossAttnUpBlock2D",) * 3)


def _tiny_vae(sample_size: int):
    from diffusers import AutoencoderKL

    # 3 blocks: latent factor 4, like the design's feasibility prototype.
    return AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(8, 16, 32), layers_per_block=1,
        norm_num_groups=8, sample_size=sample_size,
        down_block_types=("DownEncoderBlock2D",) * 3, up_block_types=("UpDecoderBlock2D",) * 3)


def _tiny_text_encoder(tokenizer):
    from transformers import CLIPTextConfig, CLIPTextModel

    return CLIPTextModel(CLIPTextConfig(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, max_position_embeddings=tokenizer.model_max_length, projection_dim=32,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id))


def _tiny_vision(image_size: int = 32):
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    from dp_models.image_encoder import clip_image_processor_class

    vision = CLIPVisionModelWithProjection(CLIPVisionConfig(
        hidden_size=32, intermediate_size=64, num_hidden_layers=3, num_attention_heads=4, image_size=image_size,
        patch_size=8, projection_dim=32))
    processor = clip_image_processor_class()(size={"shortest_edge": image_size},
                                   crop_size={"height": image_size, "width": image_size})
    return vision, processor


def _tiny_scheduler():
    from diffusers import DDPMScheduler

    return DDPMScheduler(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                         clip_sample=False, steps_offset=1, prediction_type="epsilon")


def write_tiny_pretrained(out_dir: str | Path, *, height: int = 64, width: int = 32, seed: int = 0) -> Path:
    """Write out_dir/sd/ (SD-1.5 layout) and out_dir/clip-vision/ with tiny random weights; returns out_dir."""
    import torch
    from diffusers import StableDiffusionPipeline
    from transformers import CLIPTokenizer

    out = Path(out_dir)
    if height % 16 or width % 16:
        raise ValueError(f"height and width must be multiples of 16 for the tiny model, got {height}x{width}")
    torch.manual_seed(seed)
    with tempfile.TemporaryDirectory() as tmp:
        tokenizer = CLIPTokenizer.from_pretrained(write_tiny_tokenizer(tmp))
    pipe = StableDiffusionPipeline(
        vae=_tiny_vae(max(height, width)), text_encoder=_tiny_text_encoder(tokenizer), tokenizer=tokenizer,
        unet=_tiny_unet(max(height, width) // 4), scheduler=_tiny_scheduler(), safety_checker=None,
        feature_extractor=None, requires_safety_checker=False)
    pipe.save_pretrained(out / "sd", safe_serialization=True)
    # SD-1.5's own layout: vocab.json + merges.txt, no tokenizer.json (a stale one would win on load).
    shutil.rmtree(out / "sd" / "tokenizer")
    write_tiny_tokenizer(out / "sd" / "tokenizer")
    vision, processor = _tiny_vision()
    vision.save_pretrained(out / "clip-vision", safe_serialization=True)
    processor.save_pretrained(out / "clip-vision")
    return out
