"""Capture the cross-attention probabilities of flagged tokens on the middle UNet blocks.

A processor is set on the chosen attn2 layers only (diffusers' per-module processor seam; no class is
patched). Its output and the flagged tokens' probabilities come out of one scaled_dot_product_attention
call: the value gets one extra one-hot column per flagged token (1 at that token's key), so
softmax(QK^T) @ [V, E] = [output, probabilities of the flagged columns]; queries and keys get zero columns
to match (the scores are unchanged). No score matrix is recomputed, in any precision: under autocast or
half precision the probabilities come out in the compute dtype (bf16/fp16 rounding, about 0.4% relative,
of values the fused kernel accumulates in fp32) and are averaged over heads in fp32.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from diffusers.models.attention_processor import Attention

_STORE_ATTR = "_dp_attention_store"


class AttentionStore:
    """Token positions in, head-averaged maps out: `maps` is a list of [B, A, h*w], `sizes` their (h, w)."""

    def __init__(self, layer_names: list[str], latent_size: tuple[int, int] | None = None):
        self.layer_names = list(layer_names)
        self.latent_size = latent_size
        self.token_positions: torch.Tensor | None = None
        self.previous: dict[str, object] = {}
        self._maps: dict[str, tuple[torch.Tensor, tuple[int, int]]] = {}
        self._selectors: dict[tuple, torch.Tensor] = {}

    def set_token_positions(self, token_positions: torch.Tensor | None) -> None:
        """Positions [B, A] (-1 pad) for the next UNet forward; None turns capturing off."""
        self.token_positions = token_positions
        self._maps.clear()
        self._selectors.clear()

    def positions_for(self, batch: int, device: torch.device) -> torch.Tensor:
        """The token positions on `device`, checked against the batch the UNet runs."""
        positions = self.token_positions.to(device)
        if positions.shape[0] != batch:
            raise ValueError(f"token_positions has batch {positions.shape[0]} but the UNet runs batch "
                             f"{batch}; set positions for the whole batch")
        return positions

    def selector(self, keys: int, width: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
        """[B, 1, keys, width] one-hot columns: column a is 1 at token a's key (all 0 for a -1 slot), then zeros.

        Shared by the layers of one forward (same positions, text length and dtype)."""
        key = (keys, width, dtype, device)
        if key not in self._selectors:
            positions = self.token_positions.to(device)
            found = positions >= 0
            sel = torch.zeros(positions.shape[0], keys, width, dtype=dtype, device=device)
            sel.scatter_(1, positions.clamp_min(0)[:, None, :], found[:, None, :].to(dtype))
            self._selectors[key] = sel[:, None]
        return self._selectors[key]

    def set_latent_size(self, size: tuple[int, int]) -> None:
        """The latent (h, w) of the next forward: lets non-square maps be unflattened exactly."""
        self.latent_size = (int(size[0]), int(size[1]))

    def clear(self) -> None:
        self._maps.clear()

    @property
    def maps(self) -> list[torch.Tensor]:
        return [self._maps[n][0] for n in self.layer_names if n in self._maps]

    @property
    def sizes(self) -> list[tuple[int, int]]:
        return [self._maps[n][1] for n in self.layer_names if n in self._maps]

    def pairs(self) -> list[tuple[torch.Tensor, tuple[int, int]]]:
        """(map [B, A, h*w], (h, w)) per captured layer, in UNet order (what localization_loss takes)."""
        return [self._maps[n] for n in self.layer_names if n in self._maps]

    def record(self, name: str, probs: torch.Tensor) -> None:
        self._maps[name] = (probs, self._size_of(probs.shape[-1]))

    def _size_of(self, n: int) -> tuple[int, int]:
        if self.latent_size is not None:
            h, w = self.latent_size
            for f in (1, 2, 4, 8, 16, 32, 64):
                if (-(-h // f)) * (-(-w // f)) == n:
                    return (-(-h // f), -(-w // f))
        side = int(round(n ** 0.5))
        if side * side != n:
            raise ValueError(f"cannot tell the (h, w) of an attention map with {n} positions; "
                             f"call store.set_latent_size((h, w)) before the UNet forward")
        return side, side


class CaptureAttnProcessor:
    """SDPA cross-attention that also records the flagged tokens' head-averaged probabilities."""

    def __init__(self, store: AttentionStore, name: str):
        self.store = store
        self.name = name

    def __call__(self, attn: Attention, hidden_states: torch.Tensor, encoder_hidden_states=None,
                 attention_mask=None, temb=None, *args, **kwargs) -> torch.Tensor:
        residual = hidden_states
        if attn.spatial_norm is not None:
            hidden_states = attn.spatial_norm(hidden_states, temb)
        input_ndim = hidden_states.ndim
        if input_ndim == 4:
            batch, channel, height, width = hidden_states.shape
            hidden_states = hidden_states.view(batch, channel, height * width).transpose(1, 2)
        context = hidden_states if encoder_hidden_states is None else encoder_hidden_states
        batch = context.shape[0]
        if attention_mask is not None:
            attention_mask = attn.prepare_attention_mask(attention_mask, context.shape[1], batch)
            attention_mask = attention_mask.view(batch, attn.heads, -1, attention_mask.shape[-1])
        if attn.group_norm is not None:
            hidden_states = attn.group_norm(hidden_states.transpose(1, 2)).transpose(1, 2)
        query = attn.to_q(hidden_states)
        if encoder_hidden_states is not None and attn.norm_cross:
            context = attn.norm_encoder_hidden_states(context)
        key, value = attn.to_k(context), attn.to_v(context)
        head_dim = key.shape[-1] // attn.heads
        query, key, value = (t.view(batch, -1, attn.heads, head_dim).transpose(1, 2) for t in (query, key, value))
        if attn.norm_q is not None:
            query = attn.norm_q(query)
        if attn.norm_k is not None:
            key = attn.norm_k(key)
        if self.store.token_positions is not None:
            out, probs = self._attend_and_capture(query, key, value, attention_mask, attn.scale)
            self.store.record(self.name, probs)
        else:
            out = F.scaled_dot_product_attention(query, key, value, attn_mask=attention_mask, dropout_p=0.0,
                                                 is_causal=False, scale=attn.scale)
        out = out.transpose(1, 2).reshape(batch, -1, attn.heads * head_dim).to(query.dtype)
        out = attn.to_out[1](attn.to_out[0](out))
        if input_ndim == 4:
            out = out.transpose(-1, -2).reshape(batch, channel, height, width)
        if attn.residual_connection:
            out = out + residual
        return out / attn.rescale_output_factor

    def _attend_and_capture(self, query, key, value, attention_mask, scale) -> tuple[torch.Tensor, torch.Tensor]:
        """Output [B, H, N, D] and flagged probabilities [B, A, N] (head-averaged) from one SDPA call."""
        positions = self.store.positions_for(query.shape[0], query.device)
        d, n_attr = value.shape[-1], positions.shape[1]
        width = -(-max(query.shape[-1], d + n_attr) // 8) * 8  # multiples of 8 keep the fused kernels
        sel = self.store.selector(key.shape[-2], width - d, value.dtype, value.device)
        value = torch.cat([value, sel.expand(-1, value.shape[1], -1, -1)], dim=-1)
        query, key = (F.pad(t, (0, width - t.shape[-1])) if t.shape[-1] < width else t for t in (query, key))
        out = F.scaled_dot_product_attention(query, key, value, attn_mask=attention_mask, dropout_p=0.0,
                                             is_causal=False, scale=scale)
        return out[..., :d], out[..., d:d + n_attr].float().mean(dim=1).transpose(1, 2)


def cross_attention_blocks(unet) -> list[tuple[str, torch.nn.Module]]:
    """(name, block) of the UNet's blocks that hold cross-attention, in forward order (down, mid, up)."""
    blocks = [(f"down_blocks.{i}", b) for i, b in enumerate(unet.down_blocks)]
    if unet.mid_block is not None:
        blocks.append(("mid_block", unet.mid_block))
    blocks += [(f"up_blocks.{i}", b) for i, b in enumerate(unet.up_blocks)]
    return [(n, b) for n, b in blocks if _cross_attentions(b)]


def _cross_attentions(block) -> list[tuple[str, Attention]]:
    return [(n, m) for n, m in block.named_modules()
            if isinstance(m, Attention) and m.is_cross_attention and n.endswith("attn2")]


# SD-1.5's blocks with cross-attention, by name, in forward order (FastComposer's UNET_LAYER_NAMES; its
# up_blocks.0 has none). The localization loss takes the middle K of these names, as upstream does.
UNET_CROSS_ATTENTION_BLOCKS = ("down_blocks.0", "down_blocks.1", "down_blocks.2", "mid_block", "up_blocks.1",
                               "up_blocks.2", "up_blocks.3")


def middle_blocks(unet, num_middle_blocks: int = 5) -> list[str]:
    """Names of the middle K of SD-1.5's 7 cross-attention blocks (K=5: down 1-2, mid, up 1-2) that this
    UNet has with cross-attention. The same names on any UNet, so a smaller one (the toy model's
    3-level UNet) is localized at the same depths, its 16x8 up_blocks.2 included."""
    n = len(UNET_CROSS_ATTENTION_BLOCKS)
    if not 1 <= num_middle_blocks <= n:
        raise ValueError(f"num_middle_blocks = {num_middle_blocks}: choose 1..{n} (of SD-1.5's {n} blocks with "
                         f"cross-attention)")
    start = (n - num_middle_blocks) // 2
    have = {name for name, _ in cross_attention_blocks(unet)}
    chosen = [b for b in UNET_CROSS_ATTENTION_BLOCKS[start:start + num_middle_blocks] if b in have]
    if not chosen:
        raise ValueError(f"num_middle_blocks = {num_middle_blocks} names {', '.join(UNET_CROSS_ATTENTION_BLOCKS[start:start + num_middle_blocks])}, "
                         f"but this UNet's cross-attention blocks are {', '.join(sorted(have))}; choose more blocks")
    return chosen


def install_capture(unet, num_middle_blocks: int = 5) -> AttentionStore:
    """Set capturing processors on the attn2 layers of the middle K blocks; returns their store."""
    if getattr(unet, _STORE_ATTR, None) is not None:
        uninstall_capture(unet)
    chosen = set(middle_blocks(unet, num_middle_blocks))
    layers = [(f"{bn}.{n}", m) for bn, b in cross_attention_blocks(unet) if bn in chosen
              for n, m in _cross_attentions(b)]
    store = AttentionStore([n for n, _ in layers])
    for name, module in layers:
        store.previous[name] = module.processor
        module.set_processor(CaptureAttnProcessor(store, name))
    object.__setattr__(unet, _STORE_ATTR, store)
    return store


def uninstall_capture(unet) -> None:
    """Restore the processors that install_capture replaced."""
    store = getattr(unet, _STORE_ATTR, None)
    if store is None:
        return
    modules = dict(unet.named_modules())
    for name, processor in store.previous.items():
        if _is_ours(modules[name].processor, store):  # someone may have set other processors since
            modules[name].set_processor(processor)
    object.__setattr__(unet, _STORE_ATTR, None)


def _is_ours(processor, store: AttentionStore) -> bool:
    return isinstance(processor, CaptureAttnProcessor) and processor.store is store


def capture_installed(unet, store: AttentionStore) -> bool:
    """Whether every layer of `store` still runs its capturing processor (set_attn_processor replaces them).
    Asked every training step: looks up only the store's layers (listing all of a UNet's modules took 2 ms)."""
    return getattr(unet, _STORE_ATTR, None) is store and all(
        _is_ours(unet.get_submodule(n).processor, store) for n in store.layer_names)
