"""`dp demo`: people in, edited people with new descriptions out, measured — on the toy world."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional


from dp_cli import console
from dp_cli.cli_common import dp_command, setting_option, settings
from dp_cli.demo.config import DemoConfig


@dp_command
def command(
    out: Annotated[Optional[Path], setting_option(DemoConfig, "out", "--out")] = None,
    model: Annotated[Optional[str], setting_option(DemoConfig, "model")] = None,
    persons: Annotated[Optional[int], setting_option(DemoConfig, "persons")] = None,
    seed: Annotated[Optional[int], setting_option(DemoConfig, "seed")] = None,
    steps: Annotated[Optional[int], setting_option(DemoConfig, "steps")] = None,
    candidates: Annotated[Optional[int], setting_option(DemoConfig, "candidates")] = None,
    retries: Annotated[Optional[int], setting_option(DemoConfig, "retries")] = None,
    min_score: Annotated[Optional[float], setting_option(DemoConfig, "min_score")] = None,
    backend: Annotated[Optional[str], setting_option(DemoConfig, "backend")] = None,
) -> None:
    """Run the whole pipeline on a fresh toy world: edit, annotate, export, eval; write a contact sheet and a report."""
    from dp_cli.demo.run import run_demo

    cfg = settings(DemoConfig, "demo", out=out, model=model, persons=persons, seed=seed, steps=steps,
                   candidates=candidates, retries=retries, min_score=min_score, backend=backend)
    result = run_demo(cfg, on_stage=lambda name: console.info(f"- {name}"))
    console.render_summary("dp demo", result.rows(), payload=result.payload())
