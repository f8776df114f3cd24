"""The `[annotate]` section: input/output, backend, prompt, concurrency and retry settings."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationInfo, field_validator

from dp_cli.config import Section

BACKENDS = ("openai", "openai-batch", "offline")


class AnnotateConfig(Section):
    """Settings of `dp annotate` (flag > environment > TOML > default)."""

    input: Path | None = Field(None, description="edits.jsonl (or any JSONL with base_description and "
                               "reference_attribute_list); '-' reads stdin")
    output: Path | None = Field(None, description="annotations.jsonl to append to (resumable); '-' writes stdout")
    failures: Path | None = Field(None, description="failure log; default <output stem>.failed.jsonl beside the "
                                  "output, or ./annotations.failed.jsonl when the output is stdout")
    backend: Literal["openai", "openai-batch", "offline"] = Field(
        "openai", description="openai (async chat completions), openai-batch (Batch API) or offline (rule-based)",
        json_schema_extra={"env": "DP_ANNOTATE_BACKEND"})
    model: str = Field("gpt-4o-mini", description="chat model name on the server",
                       json_schema_extra={"env": "OPENAI_MODEL"})
    base_url: str | None = Field(None, description="OpenAI-compatible server URL (vLLM, Ollama, llama.cpp); "
                                 "default api.openai.com", json_schema_extra={"env": "OPENAI_BASE_URL"})
    prompt_version: str = Field("v1", description="prompt template dp_cli/prompts/annotate_<version>.txt")
    prompt_file: Path | None = Field(None, description="a custom prompt template file (overrides prompt_version)")
    few_shot: int = Field(0, ge=0, le=20, description="example captions from the source dataset shown for style")
    style_dataset: Path | None = Field(None, description="dataset folder for few-shot captions; default: each "
                                       "record's source_dataset")
    structured_output: bool = Field(False, description="ask for JSON {rewritten, attributes_used} (json_schema "
                                    "response format; the server must support it)")
    temperature: float = Field(0.2, ge=0.0, le=2.0, description="sampling temperature")
    max_tokens: int = Field(256, ge=16, description="answer token limit (finish_reason=length is rejected)")
    concurrency: int = Field(16, ge=1, le=4096, description="most requests in flight (lowered on 429s, "
                             "raised back while requests succeed)")
    timeout: float = Field(60.0, gt=0, description="seconds per HTTP request before it is retried")
    max_retries: int = Field(4, ge=0, le=20, description="client retries with backoff on 408/409/429/5xx, "
                             "timeouts and connection errors")
    attempts: int = Field(3, ge=1, le=20, description="times an item is asked before it is recorded as failed "
                          "(rejected answers and exhausted client retries)")
    text_start: int = Field(0, ge=0, description="first record (0-based) to annotate")
    text_end: int = Field(-1, ge=-1, description="end record, exclusive; -1 = through the last record")
    slice_step: int = Field(500, ge=0, description="records per slice (work reported per slice, one batch job "
                            "per slice); 0 = one slice")
    retry_failed: bool = Field(False, description="ask again for records already in the failure log")
    include_failed_edits: bool = Field(False, description="also annotate edits that failed dp edit's verifier "
                                                          "(status failed); by default they are not asked")
    poll_interval: float = Field(30.0, gt=0, description="openai-batch: seconds between status polls")

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
