"""Build the base model the toy Diverse Person model starts from (the toy world's "SD-1.5").

Real users start from SD-1.5, whose VAE already reconstructs images. The tiny base written by
`dp_models.tiny.write_tiny_pretrained` has random weights, so this script also trains its small VAE
(f=4) to reconstruct toy-world images, and writes the usual SD layout that `dp train` loads.

    .venv/bin/python examples/toy/build_base.py --world build/toy/world --out build/toy/base --steps 1500
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image


def load_images(world: Path, height: int, width: int) -> torch.Tensor:
    """All images of a native dataset as a [N,3,H,W] tensor in [-1, 1]."""
    from dp_cli.data.formats.native import load_native

    ds = load_native(world)
    arrays = []
    for rec in ds.records:
        with Image.open(ds.image_path(rec)) as im:
            im = im.convert("RGB").resize((width, height), Image.BICUBIC)
        arrays.append(np.asarray(im, dtype=np.float32) / 127.5 - 1.0)
    return torch.from_numpy(np.stack(arrays).transpose(0, 3, 1, 2).copy())


def train_vae(vae, images: torch.Tensor, steps: int, batch: int, lr: float, seed: int) -> list[float]:
    """Reconstruction (L1 + MSE) with a small KL term; returns the loss curve."""
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(vae.parameters(), lr=lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    losses = []
    vae.train()
    for step in range(steps):
        idx = torch.randint(0, len(images), (batch,), generator=gen)
        x = images[idx]
        if torch.rand((), generator=gen) < 0.5:
            x = x.flip(-1)
        post = vae.encode(x).latent_dist
        z = post.sample(generator=gen)
        rec = vae.decode(z).sample
        loss = (rec - x).abs().mean() + ((rec - x) ** 2).mean() + 1e-6 * post.kl().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        losses.append(float(loss))
        if step % 100 == 0 or step == steps - 1:
            print(f"vae step {step:5d} loss {np.mean(losses[-100:]):.4f}", flush=True)
    vae.eval()
    return losses


@torch.no_grad()
def fit_scaling_factor(vae, images: torch.Tensor) -> float:
    """SD's convention: scale latents to unit variance."""
    z = vae.encode(images[:256]).latent_dist.mode()
    return float(1.0 / z.flatten().std())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--world", type=Path, required=True, help="toy world folder (dp toy --out ...)")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--height", type=int, default=64)
    p.add_argument("--width", type=int, default=32)
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()

    from diffusers import AutoencoderKL

    from dp_models.tiny import write_tiny_pretrained

    torch.manual_seed(args.seed)
    start = time.time()
    write_tiny_pretrained(args.out, height=args.height, width=args.width, seed=args.seed)
    vae = AutoencoderKL.from_pretrained(args.out / "sd", subfolder="vae")
    images = load_images(args.world, args.height, args.width)
    train_vae(vae, images, args.steps, args.batch, args.lr, args.seed)
    vae.register_to_config(scaling_factor=fit_scaling_factor(vae, images))
    vae.save_pretrained(args.out / "sd" / "vae", safe_serialization=True)
    with torch.no_grad():
        x = images[:64]
        rec = vae.decode(vae.encode(x).latent_dist.mode()).sample.clamp(-1, 1)
        mse = float(((rec - x) / 2).pow(2).mean())
    print(f"VAE reconstruction PSNR {10 * np.log10(1 / mse):.1f} dB; scaling factor "
          f"{vae.config.scaling_factor:.3f}; {time.time() - start:.0f} s")


if __name__ == "__main__":
    main()
