"""`[demo]`: the whole pipeline on a fresh toy world."""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Optional

from pydantic import Field

from dp_cli.config import Section, path_or_hub
from dp_cli.edit.config import AttributeTypes, Candidates, Guidance, Retries, Score, Steps, Variants


class DemoConfig(Section):
    """`dp demo` runs the whole pipeline on a fresh toy world with the shipped toy model."""

    out: Path = Field(Path("demo-out"), description="Output folder; an earlier demo's folder is replaced, any other"
                                                    " non-empty folder is refused")
    model: Optional[str] = path_or_hub(
        default=None, description="DP model folder or hub id; unset: the toy model shipped with dp "
                                  "(dp_cli/assets/toy-model)", examples=["runs/toy/model"])
    persons: int = Field(8, ge=1, le=500, description="Persons in the fresh toy world (none of them seen in "
                                                      "training)")
    seed: int = Field(1234, description="Seed of the toy world and of the edits (the toy model was trained on seed "
                                        "0)")
    types: AttributeTypes = Field(["uppercloth", "bottomcloth", "hair"],
                             description="Attribute types the edits replace (one per variant)")
    variants_per_person: Variants = Field(2, description="New identities made from each person")
    steps: Steps = Field(20, description="Denoising steps per edit")
    guidance_scale: Guidance = Field(4.0, description="Classifier-free guidance scale")
    candidates: Candidates = Field(1, description="Seeds tried per edit; the verifier's best is kept (as `dp "
                                                        "edit --candidates`)")
    retries: Retries = Field(0, description="Rounds of new seeds for an edit that fails the verifier (as "
                                                     "`dp edit --retries`)")
    min_score: Score = Field(0.5, description="Verifier score under which an edit fails: shown first in"
                                                          " the report, not annotated, not exported")
    backend: Literal["offline", "openai"] = Field(
        "offline", description="Annotation backend: offline (rules, no server) or openai (any OpenAI-compatible "
                               "server; key from OPENAI_API_KEY)")
    llm_model: str = Field("gpt-4o-mini", description="Chat model for the openai backend")
    base_url: Optional[str] = Field(None, description="OpenAI-compatible server URL for the openai backend",
                                    examples=["http://127.0.0.1:8000/v1"],
                                    json_schema_extra={"env": "OPENAI_BASE_URL"})
    export_format: Literal["cuhk-pedes", "icfg-pedes", "rstpreid", "native"] = Field(
        "cuhk-pedes", description="Layout of the grown dataset written to <out>/export: cuhk-pedes, icfg-pedes, "
                                  "rstpreid (each in a folder named as IRRA opens it, e.g. <out>/export/CUHK-PEDES) "
                                  "or native")
