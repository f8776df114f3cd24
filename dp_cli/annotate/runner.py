"""The annotate run: select records, skip finished keys, ask the backend with bounded adaptive
concurrency, validate answers, retry rejected items, and commit each result exactly once."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, TextIO

from dp_cli.annotate.backends import Answer, Transient, backend_class, redactor
from dp_cli.annotate.config import AnnotateConfig
from dp_cli.annotate.limiter import AdaptiveLimiter
from dp_cli.annotate.prompts import PromptTemplate, few_shot_examples, load_template
from dp_cli.annotate.records import Item, Plan, item_key, read_input, select
from dp_cli.annotate.sink import Sink, failures_path
from dp_cli.annotate.stats import Stats, estimate_cost
from dp_cli.annotate.validate import Verdict, check_answer
from dp_cli.data.handoff import AnnotationRow, FailureRow
from dp_cli.errors import BackendError, ConfigError, UsageError
from dp_cli.fsutil import check_outputs

ProgressFn = Callable[[Stats], None]
SliceFn = Callable[[dict], None]


@dataclass
class RunResult:
    """What a run did; `summary_rows` / `payload` feed the command's table and --json."""

    stats: Stats
    output: str
    failures: str
    backend: str
    model: str
    prompt_version: str
    slices: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # warnings for the user (e.g. records without few-shot captions)

    @property
    def cost(self) -> float | None:
        if self.backend == "offline":  # rule-based rewriting: no server, nothing to pay
            return 0.0
        return estimate_cost(self.model, self.stats.prompt_tokens, self.stats.completion_tokens,
                             batch=self.backend == "openai-batch")

    def payload(self) -> dict[str, Any]:
        s = self.stats
        failures = self.failures if Path(self.failures).exists() else None  # none written: nothing ever failed
        return {"output": self.output, "failures": failures, "backend": self.backend, "model": self.model,
                "prompt_version": self.prompt_version, "selected": s.total, "skipped": s.skipped,
                "skipped_failed_edits": s.failed_edits,
                "done": s.done, "failed": s.failed, "unreachable": s.unreachable, "retries": s.retries, "http_retries": s.http_retries,
                "rate_limited": s.rate_limited, "server_errors": s.server_errors,
                "rejections": dict(s.rejections), "api_errors": dict(s.api_errors), "prompt_tokens": s.prompt_tokens,
                "completion_tokens": s.completion_tokens, "requests": s.requests,
                "seconds": round(s.elapsed, 3), "estimated_cost_usd": self.cost, "slices": self.slices,
                "notes": self.notes}


@dataclass
class _Ctx:
    cfg: AnnotateConfig
    backend: Any
    template: PromptTemplate
    sink: Sink
    stats: Stats
    limiter: AdaptiveLimiter
    on_progress: ProgressFn
    refused: int = 0  # records failed on 400s while the server has not answered one (_stop_if_refused)


def key_params(cfg: AnnotateConfig, template: PromptTemplate) -> dict[str, Any]:
    """The parameters that change an answer, part of every key."""
    return {"temperature": cfg.temperature, "max_tokens": cfg.max_tokens, "structured": cfg.structured_output,
            "few_shot": cfg.few_shot, "style": str(cfg.style_dataset) if cfg.style_dataset else None,
            "template": template.sha}


def plan_run(cfg: AnnotateConfig, model: str, template: PromptTemplate, stdin: TextIO | None = None) -> Plan:
    """Read the input, select [text_start, text_end), slice it, and key every selected item."""
    if cfg.input is None:
        raise UsageError("no input: pass --input edits.jsonl (or '-' for stdin), or set [annotate] input")
    items = read_input(cfg.input, stdin)
    plan = select(items, cfg.text_start, cfg.text_end, cfg.slice_step)
    plan.read = len(items)
    params = key_params(cfg, template)
    for item in plan.items:
        item.key = item_key(item, model, template.version, params)
    return plan


def run(cfg: AnnotateConfig, stdin: TextIO | None = None, on_progress: ProgressFn | None = None,
        on_slice: SliceFn | None = None) -> RunResult:
    """Annotate the selected records of `cfg.input` into `cfg.output` (synchronous entry point)."""
    if cfg.output is None:
        raise UsageError("no output: pass --output annotations.jsonl (or '-' for stdout), or set [annotate] output")
    check_outputs({"--output": cfg.output, "--failures": failures_path(cfg.output, cfg.failures)},
                  {"--input": cfg.input, "--prompt-file": cfg.prompt_file, "style_dataset": cfg.style_dataset})
    return asyncio.run(_run(cfg, stdin, on_progress or (lambda s: None), on_slice or (lambda d: None)))


def annotate_file(input: Path | str, output: Path | str, **settings: Any) -> RunResult:
    """Annotate a JSONL file into `output` with [annotate] settings given as keywords (e.g. backend="offline")."""
    return run(AnnotateConfig(input=Path(input), output=Path(output), **settings))


async def _run(cfg: AnnotateConfig, stdin: TextIO | None, on_progress: ProgressFn, on_slice: SliceFn) -> RunResult:
    # 1. Prompt, backend and plan
    template = load_template(cfg.prompt_version, cfg.prompt_file)
    stats, limiter = Stats(), AdaptiveLimiter(cfg.concurrency)
    backend = backend_class(cfg.backend)(cfg, limiter, stats)
    try:
        plan = plan_run(cfg, backend.model, template, stdin)
        notes = _empty_notes(cfg, plan) + _few_shot_notes(cfg, plan.items)
        # 2. Output logs and the keys already finished
        fails = failures_path(cfg.output, cfg.failures)
        sink = Sink(cfg.output, fails, {i.key for i in plan.items} if cfg.retry_failed else None, redactor())
        notes += _redo_notes(cfg, plan.items, sink)
        result = RunResult(stats, str(cfg.output), str(fails), cfg.backend, backend.model, template.version,
                           notes=notes)
        ctx = _Ctx(cfg, backend, template, sink, stats, limiter, on_progress)
        stats.total = len(plan.items)
        try:
            # 3. Slices, one after the other
            by_index = {i.index: i for i in plan.items}
            for n, (start, end) in enumerate(plan.slices):
                todo = _unfinished([by_index[k] for k in range(start, end)], sink, stats,
                                   cfg.include_failed_edits)
                done0, failed0 = stats.done, stats.failed
                on_progress(stats)
                if todo:
                    await _run_slice(ctx, todo, f"{start}-{end}")
                info = {"slice": n + 1, "of": len(plan.slices), "start": start, "end": end, "asked": len(todo),
                        "done": stats.done - done0, "failed": stats.failed - failed0}
                result.slices.append(info)
                on_slice(info)
            sink.complete()
        finally:
            sink.close()
    finally:
        await backend.aclose()
        stats.stop()  # the run's time, however late its summary is printed (dp demo prints it at the end)
    if stats.total and stats.failed_edits == stats.total:
        result.notes.append(f"all {stats.total} edits failed dp edit's verifier: nothing was annotated "
                            "(--include-failed-edits asks for them too)")
    return result


def _redo_notes(cfg: AnnotateConfig, items: list[Item], sink: Sink) -> list[str]:
    """Records whose output already holds a line made with other settings (another model, prompt or answer
    parameter gives another key): asked again, their new line comes after the old one."""
    redo = sum(1 for i in items if i.key not in sink.done_keys and i.id in sink.done_ids)
    if not redo:
        return []
    return [f"{redo} record(s) already have a line in {cfg.output} made with other settings (model, prompt or "
            "answer parameters): they are asked again and the new line is added after the old one (dp export "
            "reads the last line of each id)"]


def _empty_notes(cfg: AnnotateConfig, plan: Plan) -> list[str]:
    """A run with nothing selected says why, instead of a silent success."""
    if plan.items:
        return []
    name = "<stdin>" if str(cfg.input) == "-" else str(cfg.input)
    if not plan.read:
        return [f"{name} holds no records: nothing was annotated"]
    end = "the last" if cfg.text_end == -1 else cfg.text_end
    return [f"records {cfg.text_start} to {end} select none of the {plan.read} in {name}: nothing was annotated "
            "(check --text-start / --text-end)"]


def _few_shot_notes(cfg: AnnotateConfig, items: list[Item]) -> list[str]:
    """--few-shot needs captions: an error when no record can have them, a note when some cannot."""
    if cfg.few_shot <= 0 or cfg.style_dataset or cfg.backend == "offline" or not items:
        return []
    without = sum(1 for item in items if not item.source_dataset)
    if without == len(items):
        raise ConfigError(f"few_shot = {cfg.few_shot}, but no input record names its source dataset "
                         "(field 'source_dataset') to take example captions from",
                         hint="set --style-dataset DATASET (or [annotate] style_dataset), or --few-shot 0")
    if without:
        return [f"{without} of {len(items)} records name no source dataset: they are asked without "
                "few-shot examples (set --style-dataset to give them some)"]
    return []


def _unfinished(items: list[Item], sink: Sink, stats: Stats, include_failed_edits: bool = False) -> list[Item]:
    """Items whose key is in neither log; duplicates of one key are asked once; edits that failed
    verification are not asked unless `include_failed_edits`."""
    todo, seen = [], set()
    for item in items:
        if item.failed_edit and not include_failed_edits:
            stats.failed_edits += 1
        elif sink.finished(item.key) or item.key in seen:
            stats.skipped += 1
        else:
            seen.add(item.key)
            todo.append(item)
    return todo


async def _run_slice(ctx: _Ctx, items: list[Item], slice_id: str) -> None:
    if hasattr(ctx.backend, "run_batch"):
        await _run_slice_batch(ctx, items, slice_id)
        return
    it = iter(items)

    async def worker() -> None:
        for item in it:  # one shared iterator: each item goes to exactly one worker
            await _process(ctx, item)

    # more workers than slots: items whose request sleeps in a retry backoff do not hold a slot, so
    # others can use it; the limiter alone bounds the requests in flight
    n_workers = min(len(items), 2 * ctx.cfg.concurrency + 4)
    await _all_or_first_error([asyncio.create_task(worker()) for _ in range(n_workers)])


async def _all_or_first_error(tasks: list[asyncio.Task]) -> None:
    """Wait for all tasks; on the first exception cancel the others and raise it."""
    done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    errors = [task.exception() for task in done if not task.cancelled() and task.exception() is not None]
    if errors:  # every exception retrieved; the first one is raised
        raise errors[0]


async def _process(ctx: _Ctx, item: Item) -> None:
    """Ask up to `attempts` times; commit the first accepted answer, else record the failure."""
    examples = few_shot_examples(item, ctx.cfg.few_shot, ctx.cfg.style_dataset)
    messages = ctx.template.messages(item, examples, ctx.cfg.structured_output)
    last: tuple[str, str, str | None] = ("", "", None)
    reasons = set()
    for attempt in range(1, ctx.cfg.attempts + 1):
        outcome = await _ask(ctx, messages, item)
        verdict = _judge(ctx, item, outcome)
        if verdict.ok:
            await _commit_done(ctx, item, verdict, outcome)
            return
        last = (verdict.reason, verdict.detail, verdict.text or None)
        reasons.add(verdict.reason)
        if attempt < ctx.cfg.attempts:
            ctx.stats.retries += 1
        ctx.on_progress(ctx.stats)
    if reasons == {"connection"}:  # the server was not reached: not an answer to log, ask again next run
        ctx.stats.unreachable += 1
        return
    await _commit_failed(ctx, item, last, ctx.cfg.attempts)
    _stop_if_refused(ctx, last)


REFUSED_RECORDS = 4  # records failed on 400s before any answer: a parameter this server refuses, not the records


def _stop_if_refused(ctx: _Ctx, last: tuple[str, str, str | None]) -> None:
    """A server that refuses the first REFUSED_RECORDS records with 400 before answering any (an unsupported
    max_tokens or response_format, a model name it does not serve) stops the run, instead of sending every
    other record to the failure log. Those records are logged (a rerun goes on past them; --retry-failed
    asks them again once the setting is fixed); after an answer, a 400 is only that record's failure."""
    if last[0] != "bad_request" or getattr(ctx.backend, "succeeded", True):
        return
    ctx.refused += 1
    if ctx.refused >= REFUSED_RECORDS:
        where = ctx.cfg.base_url or "api.openai.com"
        raise BackendError(f"{where}: 400 bad request for the first {ctx.refused} records, none answered "
                           f"({last[1][:200]})", hint="the message names what the server refuses (--model, "
                           "--max-tokens, --structured-output); fix it, then rerun with --retry-failed")


async def _ask(ctx: _Ctx, messages: list[dict], item: Item) -> Answer | Transient:
    """One attempt, inside a concurrency slot (backends with `owns_slots` take it per HTTP attempt)."""
    ctx.stats.in_flight += 1
    try:
        if getattr(ctx.backend, "owns_slots", False):
            return await ctx.backend.complete(messages, item)
        async with ctx.limiter:
            return await ctx.backend.complete(messages, item)
    except Transient as exc:
        return exc
    finally:
        ctx.stats.in_flight -= 1


def _judge(ctx: _Ctx, item: Item, outcome: Answer | Transient) -> Verdict:
    """Validate an answer (and count its tokens); a transient failure becomes a rejection reason."""
    if isinstance(outcome, Transient):  # no answer to judge: an API error, not a rejection
        ctx.stats.api_errors[outcome.reason] += 1
        return Verdict("", outcome.reason, outcome.detail)
    else:
        ctx.stats.prompt_tokens += outcome.prompt_tokens
        ctx.stats.completion_tokens += outcome.completion_tokens
        verdict = check_answer(item, outcome.content, outcome.finish_reason, refusal=outcome.refusal,
                               structured=ctx.cfg.structured_output, echo_markers=ctx.template.echo_markers())
    if not verdict.ok:
        ctx.stats.rejections[verdict.reason] += 1
    return verdict


async def _commit_done(ctx: _Ctx, item: Item, verdict: Verdict, answer: Answer) -> None:
    await ctx.sink.done(AnnotationRow(key=item.key, id=item.id, description=verdict.text, attributes=item.labels,
                                      model=ctx.backend.model, prompt_version=ctx.template.version,
                                      usage={"prompt_tokens": answer.prompt_tokens,
                                             "completion_tokens": answer.completion_tokens}))
    ctx.stats.done += 1
    ctx.on_progress(ctx.stats)


async def _commit_failed(ctx: _Ctx, item: Item, last: tuple[str, str, str | None], attempts: int) -> None:
    reason, detail, answer = last
    await ctx.sink.failed(FailureRow(key=item.key, id=item.id, reason=reason, detail=detail, attempts=attempts,
                                     last_answer=answer))
    ctx.stats.failed += 1
    ctx.on_progress(ctx.stats)


async def _run_slice_batch(ctx: _Ctx, items: list[Item], slice_id: str) -> None:
    """Batch mode: one batch job per slice and round; rejected items go into the next round's job."""
    pending = items
    for attempt in range(1, ctx.cfg.attempts + 1):
        requests = [(item, ctx.template.messages(item, few_shot_examples(item, ctx.cfg.few_shot,
                     ctx.cfg.style_dataset), ctx.cfg.structured_output)) for item in pending]
        ctx.stats.in_flight = len(pending)
        results = await ctx.backend.run_batch(slice_id, requests, ctx.on_progress)
        ctx.stats.in_flight = 0
        again = []
        for item in pending:
            outcome = results.get(item.key, Transient("missing", "no result for this custom_id in the batch output"))
            verdict = _judge(ctx, item, outcome)
            if verdict.ok:
                await _commit_done(ctx, item, verdict, outcome)
            elif attempt < ctx.cfg.attempts:
                ctx.stats.retries += 1
                again.append(item)
            else:
                await _commit_failed(ctx, item, (verdict.reason, verdict.detail, verdict.text or None), attempt)
        ctx.backend.forget(slice_id)
        pending = again
        if not pending:
            return
