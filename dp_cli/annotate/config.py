"""The `[annotate]` section: input/output, backend, prompt, concurrency and retry settings."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationInfo, field_validator

from dp_cli.config import Section

BACKENDS = ("openai", "openai-batch", "offline")


class AnnotateConfig(Section):
    """`dp annotate`: LLM rewriting of the edited images' descriptions (resumable, exactly once).
    Example: dp annotate --input out/edits.jsonl --output out/annotations.jsonl --slice-step 500
    The seed's flags --origin_path, --output_path, --TEXT_START, --TEXT_END, --SLICE_STEP also work.
    The API key is read only from the environment variable OPENAI_API_KEY, never from this file."""

    input: Path | None = Field(None, description="edits.jsonl or any JSONL with base_description + "
                                                 "reference_attribute_list; \"-\" = stdin (default: none, pass "
                                                 "--input)", examples=["out/edits.jsonl"])
    output: Path | None = Field(None, description="annotations.jsonl to append to, finished records skipped on "
                                                  "rerun; \"-\" = stdout (default: none, pass --output)",
                                examples=["out/annotations.jsonl"])
    failures: Path | None = Field(None, description="Failure log; default: <output stem>.failed.jsonl, or "
                                                    "./annotations.failed.jsonl for stdout",
                                                    examples=["out/annotations.failed.jsonl"])
    backend: Literal["openai", "openai-batch", "offline"] = Field(
        "openai", description="Backend: openai | openai-batch | offline (rule-based, no server)",
        json_schema_extra={"env": "DP_ANNOTATE_BACKEND"})
    model: str = Field("gpt-4o-mini", description="Chat model name on the server",
                       json_schema_extra={"env": "OPENAI_MODEL"})
    base_url: str | None = Field(None, description="OpenAI-compatible server (vLLM, Ollama, llama.cpp); default "
                                                   "api.openai.com",
                                                   examples=["http://127.0.0.1:8000/v1"],
                                                   json_schema_extra={"env": "OPENAI_BASE_URL"})
    prompt_version: str = Field("v1", description="Built-in template dp_cli/prompts/annotate_<version>.txt")
    prompt_file: Path | None = Field(None, description="Custom template ([system]/[user], {description} "
                                                       "{attributes} {examples} {answer_format})",
                                                       examples=["my_prompt.txt"])
    few_shot: int = Field(0, ge=0, le=20, description="Example captions from the source dataset shown for style "
                                                      "(0-20)")
    style_dataset: Path | None = Field(None, description="Dataset folder for those captions; default: each record's"
                                                         " source_dataset", examples=["data/cuhk"])
    structured_output: bool = Field(False, description="Ask for JSON {rewritten, attributes_used} (server must "
                                                       "support json_schema)")
    temperature: float = Field(0.2, ge=0.0, le=2.0, description="Sampling temperature")
    max_tokens: int = Field(256, ge=16, description="Answer token limit; answers cut by it are rejected")
    concurrency: int = Field(16, ge=1, le=4096, description="Most requests in flight; lowered on 429s and by "
                                                            "x-ratelimit-remaining-requests")
    timeout: float = Field(60.0, gt=0, description="Seconds per HTTP request")
    max_retries: int = Field(4, ge=0, le=20, description="Client retries with backoff on 408/409/429/5xx, timeouts,"
                                                         " connection errors")
    attempts: int = Field(3, ge=1, le=20, description="Asks per record before it is logged as failed")
    text_start: int = Field(0, ge=0, description="First record (0-based)")
    text_end: int = Field(-1, ge=-1, description="End record, exclusive; -1 = through the last")
    slice_step: int = Field(500, ge=0, description="Records per slice (reported per slice; one batch job per "
                                                   "slice); 0 = one slice")
    retry_failed: bool = Field(False, description="Ask again for records already in the failure log")
    include_failed_edits: bool = Field(False, description="Also annotate edits that failed dp edit's verifier (not "
                                                          "asked by default: nothing paid for them)")
    poll_interval: float = Field(30.0, gt=0, description="openai-batch backend: seconds between status polls")

    @field_validator("prompt_version")
    @classmethod
    def _version_word(cls, v: str) -> str:
        if not v or not all(c.isalnum() or c in "-_." for c in v):
            raise ValueError("use letters, digits, '-', '_' or '.' (e.g. v1)")
        return v

    @field_validator("base_url")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        if v is not None and not v.startswith(("http://", "https://")):
            raise ValueError("expected an http:// or https:// URL, e.g. http://127.0.0.1:8000/v1")
        return v

    @field_validator("text_end")
    @classmethod
    def _range(cls, v: int, info: ValidationInfo) -> int:
        start = info.data.get("text_start", 0)
        if v != -1 and v < start:
            raise ValueError(f"is before text_start ({start}); use -1 for 'through the last record'")
        return v
