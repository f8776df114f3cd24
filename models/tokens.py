"""Tokenize captions and flag the token that carries each attribute noun."""

from __future__ import annotations

import torch


def flag_noun_tokens(tokenizer, captions: list[str], spans: list[list[tuple[int, int]]],
                     max_length: int | None = None, max_attributes: int = 3
                     ) -> tuple[torch.LongTensor, torch.LongTensor]:
    """Captions -> (input_ids [B, L], token_positions [B, A]): the last sub-token of each noun span, -1 if none."""
    if len(captions) != len(spans):
        raise ValueError(f"captions ({len(captions)}) and spans ({len(spans)}) differ in length")
    length = max_length or tokenizer.model_max_length
    enc = tokenizer(list(captions), padding="max_length", max_length=length, truncation=True,
                    return_tensors="pt", return_offsets_mapping=bool(getattr(tokenizer, "is_fast", False)))
    positions = torch.full((len(captions), max_attributes), -1, dtype=torch.long)
    for b, (caption, caption_spans) in enumerate(zip(captions, spans)):
        for a, span in enumerate(list(caption_spans)[:max_attributes]):
            if "offset_mapping" in enc:
                pos = _position_from_offsets(enc["offset_mapping"][b].tolist(), enc["input_ids"][b].tolist(),
                                             tokenizer, span)
            else:
                pos = _position_from_prefix(tokenizer, caption, span, length)
            positions[b, a] = pos
    return enc["input_ids"].long(), positions


def _position_from_offsets(offsets: list[list[int]], ids: list[int], tokenizer, span: tuple[int, int]) -> int:
    """Index of the last non-special token whose char range overlaps the span (-1 when truncated away)."""
    start, end = span
    special = set(tokenizer.all_special_ids)
    found = -1
    for i, ((s, e), tid) in enumerate(zip(offsets, ids)):
        if tid in special or e <= s:
            continue
        if s < end and e > start:
            found = i
    return found


def _position_from_prefix(tokenizer, caption: str, span: tuple[int, int], length: int) -> int:
    """Slow-tokenizer fallback: count the tokens of the caption up to the end of the span."""
    n = len(tokenizer(caption[:span[1]], add_special_tokens=False)["input_ids"])
    offset = 1 if tokenizer.bos_token_id is not None else 0
    pos = offset + n - 1
    return pos if 0 <= pos < length - 1 and n > 0 else -1
