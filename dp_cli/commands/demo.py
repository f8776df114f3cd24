"""`dp demo`: people in, edited people with new descriptions out, measured — on the toy world."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from dp_cli import console
from dp_cli.cli_common import dp_command, settings


@dp_command
def command(
    out: Annotated[Optional[Path], typer.Option("--out", help="Output folder (an earlier demo's is replaced).")] = None,
    model: Annotated[Optional[str], typer.Option(help="DP model folder or hub id (default: the shipped toy model).")] = None,
    persons: Annotated[Optional[int], typer.Option(help="Persons in the fresh toy world.")] = None,
    seed: Annotated[Optional[int], typer.Option(help="Seed of the world and the edits.")] = None,
    steps: Annotated[Optional[int], typer.Option(help="Denoising steps per edit.")] = None,
    candidates: Annotated[Optional[int], typer.Option(help="Seeds tried per edit (best verified kept).")] = None,
    backend: Annotated[Optional[str], typer.Option(help="Annotation backend: offline or openai.")] = None,
) -> None:
    """Run the whole pipeline on a fresh toy world: edit, annotate, export, eval; write a contact sheet and a report."""
    from dp_cli.demo.config import DemoConfig
    from dp_cli.demo.run import run_demo

    cfg = settings(DemoConfig, "demo", out=out, model=model, persons=persons, seed=seed, steps=steps,
                   candidates=candidates, backend=backend)
    result = run_demo(cfg, on_stage=lambda name: console.info(f"- {name}"))
    console.render_summary("dp demo", result.rows(), payload=result.payload())
