"""`dp toy`: generate the procedural toy world (persons, parsing maps, captions, garment catalog)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Optional

import typer

from dp_cli import console
from dp_cli.cli_common import dp_command, setting_option, settings
from dp_cli.errors import UsageError
from dp_cli.toy.config import ToyConfig


@dp_command
def command(
    out: Annotated[Optional[Path], setting_option(ToyConfig, "out", "--out", "-o")] = None,
    persons: Annotated[Optional[int], setting_option(ToyConfig, "persons")] = None,
    seed: Annotated[Optional[int], setting_option(ToyConfig, "seed")] = None,
    height: Annotated[Optional[int], setting_option(ToyConfig, "height")] = None,
    width: Annotated[Optional[int], setting_option(ToyConfig, "width")] = None,
    images_per_person: Annotated[Optional[int], setting_option(ToyConfig, "images_per_person")] = None,
    test_fraction: Annotated[Optional[float], setting_option(ToyConfig, "test_fraction")] = None,
    catalog_per_type: Annotated[Optional[int], setting_option(ToyConfig, "catalog_per_type")] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an earlier toy world in --out.")] = False,
    sheet: Annotated[Optional[Path], typer.Option(help="Also write a sample sheet PNG here (persons, parsing "
                                                       "maps, catalog items).")] = None,
) -> None:
    """Generate a toy world: pedestrian-like figures with exact ATR parsing maps, CUHK-style captions,
    a train/test split by person and a garment catalog, all deterministic from the seed."""
    from dp_cli.fsutil import check_output_file
    from dp_cli.toy.world import CATALOG_DIR, check_target, generate_world

    cfg = settings(ToyConfig, "toy", out=out, persons=persons, seed=seed, height=height, width=width,
                   images_per_person=images_per_person, test_fraction=test_fraction,
                   catalog_per_type=catalog_per_type)
    if cfg.out is None:
        raise UsageError("missing --out: name the folder to write the toy world to", hint="e.g. dp toy --out toy")
    check_output_file("--sheet", sheet)  # before the world: a bad path must not cost (or replace) one
    check_target(cfg.out, overwrite)
    start = time.perf_counter()
    with console.progress() as bar:
        task = bar.add_task("toy world", total=cfg.persons, status="")
        dataset = generate_world(cfg.out, persons=cfg.persons, seed=cfg.seed, height=cfg.height, width=cfg.width,
                                 images_per_person=cfg.images_per_person, test_fraction=cfg.test_fraction,
                                 catalog_per_type=cfg.catalog_per_type, name=cfg.name, overwrite=overwrite,
                                 progress=lambda n: bar.advance(task, n))
    counts = dataset.counts()
    catalog = cfg.out / CATALOG_DIR / "catalog.jsonl"
    n_catalog = sum(1 for line in catalog.read_text(encoding="utf-8").splitlines() if line.strip())
    payload = {"out": str(cfg.out), "persons": cfg.persons, "images": len(dataset.records),
               "captions": sum(len(r.captions) for r in dataset.records), "splits": counts,
               "catalog": str(catalog), "catalog_items": n_catalog, "seed": cfg.seed,
               "size": [cfg.height, cfg.width], "seconds": round(time.perf_counter() - start, 2)}
    rows = [("folder", payload["out"]), ("persons", cfg.persons), ("images", payload["images"]),
            ("captions", payload["captions"])]
    rows += [(f"{split}", f"{console.count(c['images'], 'image')}, {console.count(c['persons'], 'person')}") for split, c in counts.items()]
    rows += [("catalog items", n_catalog), ("seed", cfg.seed), ("size", f"{cfg.height}x{cfg.width}"),
             ("seconds", payload["seconds"])]
    if sheet is not None:
        from dp_cli.fsutil import save_image_atomic
        from dp_cli.toy.sheet import sample_sheet

        from dp_cli.toy.world import default_modes

        save_image_atomic(sample_sheet(dataset), sheet, format="PNG")
        default_modes(sheet, dirs=[])
        payload["sheet"] = str(sheet)
        rows.append(("sample sheet", str(sheet)))
    console.render_summary("dp toy", rows, payload)
