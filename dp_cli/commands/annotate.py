"""`dp annotate`: rewrite each edited image's description with an LLM (resumable, exactly once)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional


from dp_cli import console
from dp_cli.annotate.config import AnnotateConfig
from dp_cli.cli_common import dp_command, setting_option
from dp_cli.cli_common import seed_aliases
from dp_cli.config import load_project, resolve_section
from dp_cli.errors import UsageError

# The seed's `annotate.py` spellings -> parameters of `command` (--model is spelled the same).
SEED_ALIASES = {"--origin_path": "input", "--output_path": "output", "--TEXT_START": "text_start",
                "--TEXT_END": "text_end", "--SLICE_STEP": "slice_step"}


@dp_command
@seed_aliases(SEED_ALIASES)
def command(
    input: Annotated[Optional[str], setting_option(AnnotateConfig, "input", "--input", "-i", metavar="PATH")] = None,
    output: Annotated[Optional[str], setting_option(AnnotateConfig, "output", "--output", "-o", metavar="PATH")] = None,
    failures: Annotated[Optional[Path], setting_option(AnnotateConfig, "failures")] = None,
    backend: Annotated[Optional[str], setting_option(AnnotateConfig, "backend")] = None,
    model: Annotated[Optional[str], setting_option(AnnotateConfig, "model")] = None,
    base_url: Annotated[Optional[str], setting_option(AnnotateConfig, "base_url")] = None,
    text_start: Annotated[Optional[int], setting_option(AnnotateConfig, "text_start")] = None,
    text_end: Annotated[Optional[int], setting_option(AnnotateConfig, "text_end")] = None,
    slice_step: Annotated[Optional[int], setting_option(AnnotateConfig, "slice_step")] = None,
    concurrency: Annotated[Optional[int], setting_option(AnnotateConfig, "concurrency")] = None,
    attempts: Annotated[Optional[int], setting_option(AnnotateConfig, "attempts")] = None,
    max_retries: Annotated[Optional[int], setting_option(AnnotateConfig, "max_retries")] = None,
    timeout: Annotated[Optional[float], setting_option(AnnotateConfig, "timeout")] = None,
    prompt_version: Annotated[Optional[str], setting_option(AnnotateConfig, "prompt_version")] = None,
    prompt_file: Annotated[Optional[Path], setting_option(AnnotateConfig, "prompt_file")] = None,
    few_shot: Annotated[Optional[int], setting_option(AnnotateConfig, "few_shot")] = None,
    style_dataset: Annotated[Optional[Path], setting_option(AnnotateConfig, "style_dataset")] = None,
    structured: Annotated[Optional[bool], setting_option(
        AnnotateConfig, "structured_output", "--structured/--plain")] = None,
    temperature: Annotated[Optional[float], setting_option(AnnotateConfig, "temperature")] = None,
    max_tokens: Annotated[Optional[int], setting_option(AnnotateConfig, "max_tokens")] = None,
    retry_failed: Annotated[Optional[bool], setting_option(
        AnnotateConfig, "retry_failed", "--retry-failed/--skip-failed")] = None,
    include_failed_edits: Annotated[Optional[bool], setting_option(
        AnnotateConfig, "include_failed_edits", "--include-failed-edits/--skip-failed-edits")] = None,
    poll_interval: Annotated[Optional[float], setting_option(AnnotateConfig, "poll_interval")] = None,
) -> None:
    """Rewrite each record's description with an LLM so it names the new attributes.
    One output line per input record (key, id, description, attributes, model, usage), appended and
    fsynced as it finishes; rerunning the same command skips finished records. Answers that are empty,
    truncated, refusals, echoes or miss an attribute are asked again, then logged as failures.
    The API key is read only from OPENAI_API_KEY. The seed's spellings (--origin_path, --output_path,
    --TEXT_START, --TEXT_END, --SLICE_STEP) work too.
    """
    from dp_cli.annotate.backends import redactor
    from dp_cli.annotate.runner import run

    console.STATE.redact = redactor()  # the API key never reaches the terminal, whatever a server echoes

    # settings() names its first parameter `model`, which is also one of our keys: pass the flags as a dict
    flags = dict(input=input, output=output, failures=failures, backend=backend,
                   model=model, base_url=base_url, text_start=text_start, text_end=text_end, slice_step=slice_step,
                   concurrency=concurrency, attempts=attempts, max_retries=max_retries, timeout=timeout,
                   prompt_version=prompt_version, prompt_file=prompt_file, few_shot=few_shot,
                   style_dataset=style_dataset, structured_output=structured, temperature=temperature,
                   max_tokens=max_tokens, retry_failed=retry_failed, include_failed_edits=include_failed_edits,
                   poll_interval=poll_interval)
    project = load_project(console.STATE.config, explicit=console.STATE.config is not None)
    cfg = resolve_section(AnnotateConfig, "annotate", project, flags)
    if str(cfg.output) == "-" and console.STATE.json:
        raise UsageError("--json and --output - both write stdout", hint="give --output a file, or drop --json")
    result = _run_with_progress(cfg, run)
    _render(result)


def _run_with_progress(cfg, run):
    """Run with a live bar (done/failed/in flight, req/s, tok/s, ETA) and one line per slice."""
    with console.progress() as bar:
        task = bar.add_task("annotate", total=None, status="starting")

        def on_progress(stats) -> None:
            bar.update(task, total=stats.total, completed=stats.done + stats.failed + stats.skipped,
                       status=stats.status_line())

        def on_slice(info: dict) -> None:
            console.info(f"slice {info['slice']}/{info['of']} records [{info['start']}, {info['end']}): "
                         f"asked {info['asked']}, done {info['done']}, failed {info['failed']}")

        return run(cfg, stdin=sys.stdin, on_progress=on_progress, on_slice=on_slice)


def _render(result) -> None:
    p = result.payload()
    rejections = ", ".join(f"{k} {v}" for k, v in sorted(p["rejections"].items())) or "none"
    api_errors = ", ".join(f"{k} {v}" for k, v in sorted(p["api_errors"].items())) or "none"
    cost = p["estimated_cost_usd"]
    rows = [("output", p["output"]), ("failures", p["failures"] or "none"),
            ("backend / model", f"{p['backend']} / {p['model']}"),
            ("prompt", p["prompt_version"]), ("selected", p["selected"]), ("skipped (already finished)", p["skipped"]),
            ("skipped (edit failed verification)", p["skipped_failed_edits"]),
            ("done", p["done"]), ("failed", p["failed"]), ("not reached (asked next run)", p["unreachable"]),
            ("re-asked", p["retries"]),
            ("client retries", p["http_retries"]), ("429 / 5xx seen", f"{p['rate_limited']} / {p['server_errors']}"),
            ("rejected answers", rejections), ("API errors (no answer)", api_errors), ("tokens (prompt / completion)", f"{p['prompt_tokens']} / {p['completion_tokens']}"),
            ("estimated cost", f"${cost:.4f}" if cost is not None else "unknown model"),
            ("time", f"{p['seconds']:.1f} s")]
    console.render_summary("annotate", rows, p)
    for note in p["notes"]:
        console.warn(note)
    if p["unreachable"]:
        console.warn(f"{p['unreachable']} record(s) never reached the server and were not logged; "
                      "rerun the same command to ask them again")
    if p["failed"]:
        console.warn(f"{p['failed']} record(s) failed, reasons in {p['failures']}; "
                     "rerun with --retry-failed to ask again")
