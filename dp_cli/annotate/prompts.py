"""Versioned prompt templates (dp_cli/prompts/annotate_<version>.txt) rendered into chat messages."""

from __future__ import annotations

import hashlib
import json
import random
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from dp_cli.annotate.records import Item
from dp_cli.errors import ConfigError, DataError

PROMPTS_DIR = Path(__file__).resolve().parent.parent / "prompts"
PLAIN_ANSWER = "Answer with the rewritten sentence only."
JSON_ANSWER = ('Answer with a JSON object {{"rewritten": "<the rewritten sentence>", '
               '"attributes_used": ["<each attribute from the list>"]}}.')
STRUCTURED_SCHEMA = {
    "type": "json_schema",
    "json_schema": {"name": "rewrite", "strict": True, "schema": {
        "type": "object", "additionalProperties": False, "required": ["rewritten", "attributes_used"],
        "properties": {"rewritten": {"type": "string"},
                       "attributes_used": {"type": "array", "items": {"type": "string"}}}}},
}


@dataclass(frozen=True)
class PromptTemplate:
    """A parsed template: its id ('v1' or 'file:<sha>'), system and user parts, and content hash."""

    version: str
    system: str
    user: str
    sha: str

    def messages(self, item: Item, examples: list[str] = (), structured: bool = False) -> list[dict]:
        """Chat messages for one item."""
        ex = ""
        if examples:
            ex = "Examples of the dataset's style:\n" + "\n".join(f"- {c}" for c in examples) + "\n"
        user = self.user.format(description=item.description, attributes=", ".join(item.labels),
                                examples=ex, answer_format=(JSON_ANSWER if structured else PLAIN_ANSWER).format())
        user = re.sub(r"\n{2,}", "\n", user).strip()
        msgs = [{"role": "system", "content": self.system}] if self.system else []
        return msgs + [{"role": "user", "content": user}]

    def echo_markers(self) -> list[str]:
        """Fixed instruction lines of the template; an answer containing one echoes the prompt."""
        return [line.strip()[:60].lower() for line in self.user.splitlines()
                if len(line.strip()) >= 24 and "{" not in line]


def load_template(version: str = "v1", path: Path | None = None) -> PromptTemplate:
    """Load a built-in template by version, or a custom file; errors name the file and the fix."""
    if path is None:
        path = PROMPTS_DIR / f"annotate_{version}.txt"
        if not path.is_file():
            known = sorted(p.stem.removeprefix("annotate_") for p in PROMPTS_DIR.glob("annotate_*.txt"))
            raise ConfigError(f"[annotate] prompt_version: no template {path.name} (got {version!r})",
                              hint=f"known versions: {', '.join(known)}; or set prompt_file")
    elif not Path(path).is_file():
        raise ConfigError(f"[annotate] prompt_file: {path} not found", hint="give an existing template file")
    text = Path(path).read_text(encoding="utf-8")
    tpl = parse_template(text, str(path))
    sha = hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]
    return PromptTemplate(version if path.parent == PROMPTS_DIR else f"file:{sha}", tpl[0], tpl[1], sha)


def parse_template(text: str, where: str) -> tuple[str, str]:
    """'[system]' and '[user]' sections -> (system, user); the user part must use the placeholders."""
    sections: dict[str, list[str]] = {}
    current = None
    for line in text.splitlines():
        if line.strip() in ("[system]", "[user]"):
            current = line.strip()[1:-1]
            sections[current] = []
        elif current is not None:
            sections[current].append(line)
    user = "\n".join(sections.get("user", [])).strip()
    if not user:
        raise ConfigError(f"{where}: prompt template has no [user] section", hint="see dp_cli/prompts/annotate_v1.txt")
    for name in ("description", "attributes"):
        if "{" + name + "}" not in user:
            raise ConfigError(f"{where}: [user] section lacks the placeholder {{{name}}}")
    try:
        user.format(description="", attributes="", examples="", answer_format="")
    except (KeyError, IndexError, ValueError) as exc:
        raise ConfigError(f"{where}: bad placeholder in template ({exc})", hint="use {{ and }} for literal braces") from None
    return "\n".join(sections.get("system", [])).strip(), user


@lru_cache(maxsize=16)
def _dataset_captions(root: str) -> tuple[str, ...]:
    path = Path(root) / "annotations.jsonl"
    if not path.is_file():
        raise DataError(f"{path}: not found for few-shot captions", hint="set style_dataset or few_shot = 0")
    caps = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            caps += [c for c in json.loads(line).get("captions", []) if isinstance(c, str) and c.strip()]
    return tuple(caps)


def few_shot_examples(item: Item, n: int, style_dataset: Path | None) -> list[str]:
    """n captions of the source dataset, chosen deterministically per item, never its own description."""
    root = str(style_dataset) if style_dataset else item.source_dataset
    if n <= 0 or not root:
        return []
    caps = [c for c in _dataset_captions(root) if c.strip() != item.description]
    rng = random.Random(f"{item.id}|{item.description}")
    return rng.sample(caps, min(n, len(caps)))
