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
    fast = bool(getattr(tokenizer, "is_fast", False))
    # python lists, one tensor at the end: return_tensors="pt" costs more than the tokenizing (training
    # tokenizes one caption per example)
    enc = tokenizer(list(captions), padding="max_length", max_length=length, truncation=True,
                    return_offsets_mapping=fast)
    special = set(tokenizer.all_special_ids) if fast else set()
    positions = [[-1] * max_attributes for _ in captions]
    for b, (caption, caption_spans) in enumerate(zip(captions, spans)):
        for a, span in enumerate(list(caption_spans)[:max_attributes]):
            if fast:
                positions[b][a] = _position_from_offsets(enc["offset_mapping"][b], enc["input_ids"][b], special, span)
            else:
                positions[b][a] = _position_from_prefix(tokenizer, caption, span, length)
    return torch.tensor(enc["input_ids"], dtype=torch.long), torch.tensor(positions, dtype=torch.long)


def _position_from_offsets(offsets: list, ids: list[int], special: set[int], span: tuple[int, int]) -> int:
    """Index of the last non-special token whose char range overlaps the span (-1 when truncated away)."""
    start, end = span
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
