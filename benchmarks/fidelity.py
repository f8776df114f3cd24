"""Edit fidelity against the toy truth, the verifier's precision and recall, and time per edit, for N candidates.

The edits run on a copy of a fresh toy world whose truth can be stripped first (`--strip-truth`: the
dataset's `extra` and the catalog's `color`, `noun` and `pattern` are removed), so the verifier and the
edit never see it; the truth is joined back afterwards only to measure. Same world and settings as
`dp demo` by default (8 persons, 2 variants, 20 DDIM steps, guidance 4, seed 1234).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/fidelity.py --candidates 1 2 4
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/fidelity.py --persons 30 --seed 99 --strip-truth
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/fidelity.py --candidates 1 --retries 0 1 3

Prints one row per N: raw fidelity (edited region's mean colour closer to the reference than to the
original, over edits whose colours differ; a patterned garment's colour is its two colours mixed by
the pattern's share, and the same figures with its first colour only follow), by type, the share passing the verifier, fidelity among
those that pass (what the export keeps), the verifier's precision / recall of "took the reference"
against the truth, seconds per edit and seeds tried per edit (all measured in this run); one row per
N and per --retries R.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dp_cli.data.handoff import EditRow, read_edit_rows  # noqa: E402
from dp_cli.fsutil import write_jsonl_atomic  # noqa: E402


def make_world(root: Path, persons: int, seed: int, strip: bool) -> tuple[Path, Path]:
    """(truth world, world to edit): the second is a copy without truth when `strip`."""
    from dp_cli.toy.world import generate_world

    truth = root / "truth"
    generate_world(truth, persons=persons, seed=seed, height=64, width=32, images_per_person=2,
                   test_fraction=0.0, catalog_per_type=6)
    if not strip:
        return truth, truth
    bare = root / "bare"
    shutil.copytree(truth, bare)
    rows = [json.loads(line) for line in (bare / "annotations.jsonl").read_text().splitlines() if line.strip()]
    (bare / "annotations.jsonl").write_text("".join(json.dumps({k: v for k, v in r.items() if k != "extra"}) + "\n"
                                                    for r in rows))
    cat = bare / "catalog" / "catalog.jsonl"
    items = [json.loads(line) for line in cat.read_text().splitlines() if line.strip()]
    cat.write_text("".join(json.dumps({k: v for k, v in i.items() if k not in ("color", "noun", "pattern")}) + "\n"
                           for i in items))
    return truth, bare


def join_truth(manifest: Path, truth: Path, edited_world: Path) -> Path:
    """A copy of edits.jsonl with the truth's catalog colours and source dataset, for evaluate_edits."""
    colours = {}
    for line in (truth / "catalog" / "catalog.jsonl").read_text().splitlines():
        item = json.loads(line)
        colours[item["image"]] = {k: item.get(k) for k in ("color", "pattern", "pattern_color")}
    out = manifest.with_name("edits.truth.jsonl")
    rows = list(read_edit_rows(manifest))
    for row in rows:
        row.source_dataset = str(truth.resolve())
        for ref in row.references:
            rel = str(Path(ref.image).resolve().relative_to((edited_world / "catalog").resolve()))
            ref.extra.update(colours[rel])
    write_jsonl_atomic(out, [row.to_json() for row in rows])
    return out


def measure(rows: list[EditRow], quality) -> dict:
    """Fidelity raw and among passed edits, by type, and the verifier's precision / recall."""
    status = {r.id: r.verdict for r in rows}
    hits = {"all": [0, 0], "passed": [0, 0]}
    by_type: dict[str, list[int]] = {}
    tp = fp = fn = 0
    for edit in quality.edits:
        passed = status.get(edit.id) == "passed"
        for a in edit.attributes:
            if a.closer_to_reference is None:
                continue
            ok = bool(a.closer_to_reference)
            hits["all"][0] += ok
            hits["all"][1] += 1
            t = by_type.setdefault(a.type, [0, 0])
            t[0] += ok
            t[1] += 1
            if passed:
                hits["passed"][0] += ok
                hits["passed"][1] += 1
            tp += ok and passed
            fp += (not ok) and passed
            fn += ok and not passed
    pct = lambda h: f"{h[0]}/{h[1]} ({100 * h[0] / max(h[1], 1):.1f}%)"  # noqa: E731
    return {"raw": pct(hits["all"]), "by_type": ", ".join(f"{k} {v[0]}/{v[1]}" for k, v in sorted(by_type.items())),
            "passed": f"{sum(s == 'passed' for s in status.values())}/{len(status)}",
            "fidelity_passed": pct(hits["passed"]),
            "precision": f"{100 * tp / max(tp + fp, 1):.1f}%", "recall": f"{100 * tp / max(tp + fn, 1):.1f}%"}


def run(args, n: int, retries: int, root: Path, truth: Path, world: Path) -> dict:
    from dp_cli.edit.config import EditConfig
    from dp_cli.edit.manifest import read_rows
    from dp_cli.edit.runner import run_dataset_edit
    from dp_cli.eval.edits import evaluate_edits

    cfg = EditConfig(model=args.model, dataset=world, split="train", catalog=world / "catalog",
                     types=["uppercloth", "bottomcloth", "hair"], attributes_per_variant=1, variants_per_person=2,
                     output_dir=root / (f"edits-n{n}" + (f"-r{retries}" if retries else "")), seed=args.seed, steps=args.steps, guidance_scale=args.guidance,
                     mask_dilation=1, feather=1, candidates=n, retries=retries, min_score=args.min_score,
                     delayed_conditioning=args.delayed_conditioning,
                     **({} if args.reference_scale is None else {"reference_scale": args.reference_scale}))
    start = time.perf_counter()
    summary = run_dataset_edit(cfg)
    seconds = time.perf_counter() - start
    manifest = summary.manifest
    joined, rows = join_truth(manifest, truth, world), read_rows(manifest)
    first = measure(rows, evaluate_edits(joined, pattern_aware=False))
    tries = sum(len(r.candidates or [None]) for r in rows) / max(len(rows), 1)
    return {"N": n, "retries": retries, **measure(rows, evaluate_edits(joined)),
            "s/edit": f"{seconds / max(summary.rows, 1):.3f}", "seeds/edit": f"{tries:.2f}",
            "first-colour truth": {k: first[k] for k in ("raw", "fidelity_passed", "precision")}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--candidates", type=int, nargs="+", default=[1, 2, 4])
    ap.add_argument("--retries", type=int, nargs="+", default=[0], help="rounds of new seeds for failed edits")
    ap.add_argument("--persons", type=int, default=8)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--strip-truth", action="store_true")
    ap.add_argument("--min-score", type=float, default=0.5)
    ap.add_argument("--delayed-conditioning", type=float, default=0.0)
    ap.add_argument("--reference-scale", type=float, default=None, help="default: dp edit's")
    ap.add_argument("--model", default=None, help="default: the shipped toy model")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--guidance", type=float, default=4.0, help="guidance scale (the demo's 4 by default)")
    ap.add_argument("--keep", type=Path, default=None, help="write here instead of a temporary folder")
    args = ap.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="dp-fidelity-"))
    truth, world = make_world(root, args.persons, args.seed, args.strip_truth)
    print(f"world: {args.persons} persons, seed {args.seed}, truth {'stripped' if args.strip_truth else 'kept'}; "
          f"min_score {args.min_score}")
    for n in args.candidates:
        for retries in args.retries:
            print(json.dumps(run(args, n, retries, root, truth, world)), flush=True)
    if args.keep is None:
        shutil.rmtree(root)


if __name__ == "__main__":
    main()
