"""The demo pipeline: toy world -> edit -> annotate -> export -> eval -> contact sheet and report."""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from dp_cli.demo.config import DemoConfig
from dp_cli.errors import BackendError, DataError

MARKER = "demo.json"
StageFn = Callable[[str], None]


@dataclass
class DemoResult:
    """Where everything went and what was measured."""

    out: Path
    model: str
    resolution: tuple[int, int]
    edit: Any  # dp_cli.edit.runner.EditSummary
    annotate: Any  # dp_cli.annotate.runner.RunResult
    export: Any  # dp_cli.export.ExportResult
    edit_quality: Any  # dp_cli.eval.edits.EditQuality
    caption_quality: Any  # dp_cli.eval.captions.CaptionQuality
    seconds: dict[str, float] = field(default_factory=dict)
    first_colour: Any = None  # EditQuality with patterned garments measured by their first colour only
    sheet: Path | None = None
    report: Path | None = None

    def rows(self) -> list[tuple[str, Any]]:
        """The one summary table."""
        eq, cq = self.edit_quality, self.caption_quality
        pct = lambda v: "n/a" if v is None else f"{100 * v:.1f}%"  # noqa: E731
        return [
            ("model", self.model), ("resolution", f"{self.resolution[0]}x{self.resolution[1]}"),
            ("edited images", f"{self.edit.rows} ({self.edit.images_per_s:.2f} images/s)"),
            ("annotated", f"{self.annotate.stats.done} done, {self.annotate.stats.failed} failed "
                          f"({self.annotate.backend})"),
            ("exported", f"{self.export.out} ({self.export.format})"),
            ("fidelity: region closer to reference", f"{eq.closer_to_reference}/{eq.attributes_color_differs} "
                                                     f"({pct(eq.share_closer_to_reference)})"),
            ("  by type", _fidelity_by_type(eq)),
            *([("  by first colour only", f"{self.first_colour.closer_to_reference}/"
                                          f"{self.first_colour.attributes_color_differs} "
                                          f"({pct(self.first_colour.share_closer_to_reference)}); exported "
                                          f"{self.first_colour.passed_closer_to_reference}/"
                                          f"{self.first_colour.passed_color_differs}")]
              if self.first_colour is not None else []),
            ("verifier: passed (exported) / failed", f"{eq.verified_passed} / {eq.verified_failed}"),
            ("fidelity among exported edits", f"{eq.passed_closer_to_reference}/{eq.passed_color_differs} "
                                              f"({pct(eq.share_closer_among_passed)})"),
            ("preservation outside mask", _psnr_text(eq)),
            ("captions name every new attribute", pct(cq.share_names_all_attributes)),
            ("captions still name a replaced one", pct(cq.share_names_replaced)),
            ("contact sheet", str(self.sheet)), ("report", str(self.report)),
            ("seconds", " ".join(f"{k} {v:.1f}" for k, v in self.seconds.items())),
        ]

    def payload(self) -> dict[str, Any]:
        return {"out": str(self.out), "model": self.model, "resolution": list(self.resolution),
                "edit": {"images": self.edit.rows, "images_per_s": self.edit.images_per_s},
                "annotate": self.annotate.payload(), "export": self.export.payload(),
                "edit_quality": self.edit_quality.to_dict(per_edit=False),
                "edit_quality_first_colour": (self.first_colour.to_dict(per_edit=False)
                                              if self.first_colour is not None else None),
                "caption_quality": self.caption_quality.to_dict(), "seconds": self.seconds,
                "contact_sheet": str(self.sheet), "report": str(self.report)}


def _fidelity_by_type(eq) -> str:
    """'uppercloth 8/8, hair 3/8' over attributes whose reference colour differs from the original."""
    counts: dict[str, list[int]] = {}
    for edit in eq.edits:
        for attr in edit.attributes:
            if attr.closer_to_reference is not None:
                hit = counts.setdefault(attr.type, [0, 0])
                hit[0] += bool(attr.closer_to_reference)
                hit[1] += 1
    return ", ".join(f"{t} {h}/{n}" for t, (h, n) in sorted(counts.items())) or "n/a"


def _psnr_text(eq) -> str:
    if eq.psnr_mean is None and eq.identical_outside_mask:
        return f"identical to the source in {eq.identical_outside_mask}/{eq.num_edits} images"
    return "n/a" if eq.psnr_mean is None else f"PSNR {eq.psnr_mean:.1f} dB (min {eq.psnr_min:.1f})"


def prepare_out(out: Path) -> None:
    """An earlier demo's folder is replaced; any other non-empty folder is refused."""
    if out.exists() and any(out.iterdir()):
        if not (out / MARKER).exists():
            raise DataError(f"{out}: folder is not empty and was not written by `dp demo`",
                            hint="pick a new --out, or empty that folder")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / MARKER).write_text(json.dumps({"status": "running"}) + "\n")


def model_resolution(model_ref: str) -> tuple[int, int]:
    """The (height, width) the DP model was trained at."""
    from dp_models.dp_model import DPConfig

    path = Path(model_ref) / "dp_config.json"
    if not path.exists():
        raise DataError(f"{path}: not found", hint="the demo needs a model folder written by `dp train`")
    return tuple(DPConfig.load(path).resolution)


def run_demo(cfg: DemoConfig, on_stage: StageFn | None = None) -> DemoResult:
    """Run every stage on a fresh toy world; raises DpError before writing when inputs are wrong."""
    from dp_cli.edit.runner import resolve_model

    stage = on_stage or (lambda name: None)
    model = resolve_model(cfg.model)
    resolution = model_resolution(model)
    if cfg.backend == "openai":  # a missing key fails now, not after the edits
        from dp_cli.annotate.backends import api_key

        api_key(cfg.base_url)
    out = Path(cfg.out)
    prepare_out(out)
    seconds: dict[str, float] = {}

    def timed(name: str, fn: Callable[[], Any]) -> Any:
        stage(name)
        start = time.perf_counter()
        value = fn()
        seconds[name] = time.perf_counter() - start
        return value

    # 1. A fresh toy world (persons the toy model never saw)
    world = timed("toy world", lambda: _world(cfg, out, resolution))
    # 2. Edit: catalog attributes on every person, several variants each
    edit = timed("edit", lambda: _edit(cfg, out, model))
    # 3. Annotate the edits
    annotated = timed("annotate", lambda: _annotate(cfg, out))
    # 4. Export the grown dataset
    exported = timed("export", lambda: _export(cfg, out, world))
    # 5. Measure edits and captions
    eq, cq, first = timed("eval", lambda: _evaluate(out, world))
    result = DemoResult(out, model, resolution, edit, annotated, exported, eq, cq, seconds,
                        first_colour=first)
    # 6. Contact sheet and report
    timed("report", lambda: _report(result))
    (out / MARKER).write_text(json.dumps(result.payload(), indent=2, default=str) + "\n")
    return result


def _world(cfg: DemoConfig, out: Path, resolution: tuple[int, int]):
    from dp_cli.toy.world import generate_world

    return generate_world(out / "world", persons=cfg.persons, seed=cfg.seed, height=resolution[0],
                          width=resolution[1], images_per_person=2, test_fraction=0.0, catalog_per_type=6)


def _edit(cfg: DemoConfig, out: Path, model: str):
    from dp_cli.edit.config import EditConfig
    from dp_cli.edit.runner import run_dataset_edit

    ecfg = EditConfig(model=model, dataset=out / "world", split="train", catalog=out / "world" / "catalog",
                      types=cfg.types, attributes_per_variant=1, variants_per_person=cfg.variants_per_person,
                      output_dir=out / "edits", seed=cfg.seed, steps=cfg.steps, guidance_scale=cfg.guidance_scale,
                      candidates=cfg.candidates, retries=cfg.retries, min_score=cfg.min_score,
                      mask_dilation=1, feather=1)  # the defaults are sized for real images, not 64x32 figures
    return run_dataset_edit(ecfg)


def _annotate(cfg: DemoConfig, out: Path):
    from dp_cli.annotate.config import AnnotateConfig
    from dp_cli.annotate.runner import run

    acfg = AnnotateConfig(input=out / "edits" / "edits.jsonl", output=out / "edits" / "annotations.jsonl",
                          backend=cfg.backend, model=cfg.llm_model if cfg.backend == "openai" else "offline",
                          base_url=cfg.base_url, slice_step=0)
    hint = "check the server and OPENAI_BASE_URL ([demo] base_url), or use --backend offline"
    try:
        result = run(acfg)
    except BackendError as exc:  # e.g. no server at base_url: the edits stay, the demo stops here
        raise BackendError(f"annotate: {exc.message}", hint=hint) from None
    if result.stats.done == 0 and (result.stats.failed or result.stats.unreachable):
        server = cfg.base_url or "api.openai.com"
        asked = result.stats.failed + result.stats.unreachable
        raise BackendError(f"annotate: none of the {asked} edits was annotated by {server} "
                           f"(reasons in {result.failures})", hint=hint)
    return result


def _export(cfg: DemoConfig, out: Path, world):
    from dp_cli.data.formats import get_format
    from dp_cli.export import export_dataset, load_generated

    generated = load_generated(out / "edits" / "edits.jsonl", world, out / "edits" / "annotations.jsonl")
    folder = getattr(get_format(cfg.export_format), "irra_dir", None)  # IRRA opens <root>/CUHK-PEDES etc.
    return export_dataset(world, cfg.export_format, out / "export" / folder if folder else out / "export",
                          generated=generated)


def _evaluate(out: Path, world):
    from dp_cli.eval.captions import evaluate_captions
    from dp_cli.eval.edits import evaluate_edits

    eq = evaluate_edits(out / "edits" / "edits.jsonl")
    # the measure before pattern-aware truth (a checked garment judged by its first colour), for comparison
    first = evaluate_edits(out / "edits" / "edits.jsonl", pattern_aware=False)
    captions = [c for r in world.records for c in r.captions]
    cq = evaluate_captions(out / "edits" / "annotations.jsonl", out / "edits" / "edits.jsonl", captions)
    return eq, cq, first


def _report(result: DemoResult) -> None:
    from dp_cli.demo.report import write_html_report, write_sheet

    result.sheet = write_sheet(result.out / "edits", result.out / "contact_sheet.png")
    result.report = result.out / "report.html"  # named before writing: the page's own table shows it
    write_html_report(result, result.report)
