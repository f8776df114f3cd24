"""Shared fixtures: one tiny pretrained model folder per test session."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory):
    from models.tiny import write_tiny_pretrained

    return write_tiny_pretrained(tmp_path_factory.mktemp("tiny"), seed=0)


@pytest.fixture(scope="session")
def tokenizer(tiny_dir):
    from transformers import CLIPTokenizer

    return CLIPTokenizer.from_pretrained(tiny_dir / "sd", subfolder="tokenizer")
