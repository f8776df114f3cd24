"""Shared fixtures: one tiny pretrained model folder per test session."""

from __future__ import annotations

import pytest
import torch


from dp_cli.data.attributes import find_nouns
from dp_models.tokens import flag_noun_tokens


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory):
    from dp_models.tiny import write_tiny_pretrained

    return write_tiny_pretrained(tmp_path_factory.mktemp("tiny"), seed=0)


@pytest.fixture(scope="session")
def tokenizer(tiny_dir):
    from transformers import CLIPTokenizer

    return CLIPTokenizer.from_pretrained(tiny_dir / "sd", subfolder="tokenizer")


@pytest.fixture(scope="session", autouse=True)
def _one_thread():
    """The tiny models are fastest on one thread; several threads thrash on a shared 2-core machine."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)

CAPTIONS = ("A woman with long black hair is wearing a red shirt and blue jeans.",
            "A man in a white t-shirt and black pants.")
# rows of a 64x32 image: hair on top, upper cloth in the middle, bottom cloth below
REGIONS = {"hair": (0, 16), "uppercloth": (16, 36), "bottomcloth": (36, 56)}


def build_batch(model, batch_size: int = 2, seed: int = 0) -> dict:
    """Pixels, ids, positions, reference images, masks and validity for `batch_size` toy captions."""
    g = torch.Generator().manual_seed(seed)
    h, w = model.config.resolution
    a_max = model.config.max_reference_attributes
    captions = [CAPTIONS[i % len(CAPTIONS)] for i in range(batch_size)]
    matches = [find_nouns(c, model.config.attribute_types)[:a_max] for c in captions]
    ids, positions = flag_noun_tokens(model.tokenizer, captions, [[(m.start, m.end) for m in ms] for ms in matches],
                                      max_length=model.config.max_length or 32, max_attributes=a_max)
    masks = torch.zeros(batch_size, a_max, h, w)
    valid = torch.zeros(batch_size, a_max, dtype=torch.bool)
    for b, ms in enumerate(matches):
        for a, m in enumerate(ms):
            top, bottom = REGIONS[m.type]
            masks[b, a, top:bottom, 4:w - 4] = 1.0
            valid[b, a] = True
    size = model.image_encoder.image_size
    return {"pixel_values": torch.rand(batch_size, 3, h, w, generator=g) * 2 - 1, "input_ids": ids,
            "token_positions": positions,
            "ref_pixel_values": torch.randn(batch_size, a_max, 3, size, size, generator=g),
            "attr_masks": masks, "attr_valid": valid}


def attention_in_mask(store, masks: torch.Tensor, valid: torch.Tensor) -> float:
    """Share of the flagged tokens' attention that falls inside their masks, averaged over layers."""
    from dp_models.losses import _resize_masks

    shares = []
    for probs, size in store.pairs():
        m = _resize_masks(masks, size).flatten(2)
        share = (probs * m).sum(-1) / probs.sum(-1).clamp_min(1e-8)
        shares.append(share[valid].mean())
    return torch.stack(shares).mean().item()


@pytest.fixture
def make_batch():
    return build_batch


@pytest.fixture
def in_mask_mass():
    return attention_in_mask
