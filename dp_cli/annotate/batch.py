"""The openai-batch backend: request JSONL -> upload -> create batch -> poll -> download -> join by custom_id.

The batch id of each slice is kept in `<output stem>.batch.json` beside the output until its results
are committed, so a restart resumes the existing batch instead of paying for a new one.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any, Callable

from dp_cli.annotate.backends import Answer, OpenAIBackend, Transient, answer_from_body, redact
from dp_cli.annotate.config import AnnotateConfig
from dp_cli.annotate.limiter import AdaptiveLimiter
from dp_cli.annotate.records import Item
from dp_cli.annotate.sink import failures_path
from dp_cli.annotate.stats import Stats
from dp_cli.errors import BackendError
from dp_cli.fsutil import write_json_atomic

ENDPOINT = "/v1/chat/completions"
TERMINAL = ("completed", "failed", "expired", "cancelled")


def state_path(cfg: AnnotateConfig) -> Path:
    """`<output stem>.batch.json` beside the output (beside the failure log for stdout)."""
    if str(cfg.output) != "-":
        out = Path(cfg.output)
        return out.with_name(f"{out.stem}.batch.json")
    fails = failures_path("-", cfg.failures)
    return fails.with_name(fails.name.replace(".failed.jsonl", "") + ".batch.json")


class BatchBackend(OpenAIBackend):
    """OpenAI Batch API: one job per slice (and per retry round)."""

    name = "openai-batch"

    def __init__(self, cfg: AnnotateConfig, limiter: AdaptiveLimiter, stats: Stats):
        super().__init__(cfg, limiter, stats)
        self.state_file = state_path(cfg)
        self.created = 0  # batches created by this process
        self.resumed = 0  # batches picked up from the state file

    def _state(self) -> dict[str, Any]:
        if not self.state_file.exists():
            return {"batches": {}}
        try:
            state = json.loads(self.state_file.read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            raise BackendError(f"{self.state_file}: unreadable batch state",
                               hint="delete it to start new batch jobs (running ones are then paid twice)") from None
        return state if isinstance(state.get("batches"), dict) else {"batches": {}}

    def _save(self, state: dict[str, Any]) -> None:
        write_json_atomic(self.state_file, state)

    def forget(self, slice_id: str) -> None:
        """The slice's results are committed: drop its batch from the state file."""
        state = self._state()
        if state["batches"].pop(slice_id, None) is not None:
            if state["batches"]:
                self._save(state)
            else:
                self.state_file.unlink(missing_ok=True)

    async def run_batch(self, slice_id: str, requests: list[tuple[Item, list[dict]]],
                        on_progress: Callable[[Stats], None]) -> dict[str, Answer | Transient]:
        """Results by key for one slice's requests (resuming that slice's batch when there is one)."""
        batch_id = await self._resume_or_create(slice_id, requests)
        batch = await self._poll(batch_id, on_progress)
        results: dict[str, Answer | Transient] = {}
        for file_id in (batch.error_file_id, batch.output_file_id):
            if file_id:
                results.update(self._join(await self._download(file_id)))
        if batch.status != "completed" and not results:
            self.forget(slice_id)  # a rerun submits a new batch for this slice
            raise BackendError(f"batch {batch_id} {batch.status}: {self._errors(batch)}",
                               hint="fix the cause, then rerun the same command to submit a new batch")
        return results

    async def _resume_or_create(self, slice_id: str, requests: list[tuple[Item, list[dict]]]) -> str:
        import openai

        keys = [item.key for item, _ in requests]
        entry = self._state()["batches"].get(slice_id)
        if entry and set(keys) <= set(entry["keys"]):
            self.resumed += 1
            return entry["batch_id"]
        lines = [json.dumps({"custom_id": item.key, "method": "POST", "url": ENDPOINT,
                             "body": self.request_body(messages)}, ensure_ascii=False) for item, messages in requests]
        data = ("\n".join(lines) + "\n").encode("utf-8")
        try:
            upload = await self.client.files.create(file=(f"dp-annotate-{slice_id}.jsonl", data), purpose="batch")
            batch = await self.client.batches.create(input_file_id=upload.id, endpoint=ENDPOINT,
                                                     completion_window="24h", metadata={"dp_slice": slice_id})
        except openai.APIError as exc:
            raise self._fatal(exc) from None
        state = self._state()
        state["batches"][slice_id] = {"batch_id": batch.id, "input_file_id": upload.id, "keys": keys}
        self._save(state)
        self.created += 1
        return batch.id

    async def _poll(self, batch_id: str, on_progress: Callable[[Stats], None]) -> Any:
        import openai

        while True:
            try:
                batch = await self.client.batches.retrieve(batch_id)
            except openai.APIError as exc:
                raise self._fatal(exc) from None
            on_progress(self.stats)
            if batch.status in TERMINAL:
                return batch
            await asyncio.sleep(self.cfg.poll_interval)

    async def _download(self, file_id: str) -> str:
        import openai

        try:
            content = await self.client.files.content(file_id)
        except openai.APIError as exc:
            raise self._fatal(exc) from None
        return content.text

    def _join(self, text: str) -> dict[str, Answer | Transient]:
        """Output/error file lines -> results by custom_id; unreadable lines are skipped (asked again)."""
        out: dict[str, Answer | Transient] = {}
        for line in text.splitlines():
            try:
                row = json.loads(line)
                key = row["custom_id"]
            except (json.JSONDecodeError, KeyError, TypeError):
                continue
            out[key] = self._result(row)
        return out

    def _result(self, row: dict) -> Answer | Transient:
        response, error = row.get("response") or {}, row.get("error")
        status = response.get("status_code")
        if error or status != 200:
            detail = redact(json.dumps(error or response.get("body"))[:200], self._key)
            return Transient(f"http_{status}" if status else "batch_error", detail)
        try:
            answer = answer_from_body(response["body"])
        except (KeyError, IndexError, TypeError, AttributeError, ValueError):
            return Transient("malformed", "unreadable body in the batch output")
        self.stats.requests += 1
        return answer

    def _fatal(self, exc: Exception) -> BackendError:
        from dp_cli.annotate.backends import fatal_error, transient_reason

        fatal = fatal_error(exc, self.cfg, self._key)
        return fatal or BackendError(f"batch API call failed ({transient_reason(exc)}): "
                                     f"{redact(str(exc)[:200], self._key)}",
                                     hint="rerun the same command to resume")

    @staticmethod
    def _errors(batch: Any) -> str:
        errs = getattr(getattr(batch, "errors", None), "data", None) or []
        return "; ".join(f"{getattr(e, 'code', '')}: {getattr(e, 'message', '')}" for e in errs[:3]) or "no details"
