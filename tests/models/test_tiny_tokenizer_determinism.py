"""The tiny tokenizer is the same on every build (tiny models must tokenize identically run to run)."""

import subprocess
import sys

from transformers import CLIPTokenizer

from dp_models.tiny import tiny_bpe, tiny_vocab_words, write_tiny_tokenizer

CAPTION = "A woman with long black hair is wearing a red t-shirt, blue jeans and white sneakers."


def test_same_vocab_and_ids_on_every_build(tmp_path):
    first = CLIPTokenizer.from_pretrained(write_tiny_tokenizer(tmp_path / "a"))
    second = CLIPTokenizer.from_pretrained(write_tiny_tokenizer(tmp_path / "b"))
    assert (tmp_path / "a" / "vocab.json").read_bytes() == (tmp_path / "b" / "vocab.json").read_bytes()
    assert first(CAPTION)["input_ids"] == second(CAPTION)["input_ids"]


def test_same_merges_in_a_fresh_process():
    code = "from dp_models.tiny import tiny_bpe; print(len(tiny_bpe()[1]), tiny_bpe()[1][:50])"
    out = [subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
           for _ in range(2)]
    assert out[0] == out[1]
    assert str(tiny_bpe()[1][:50]) in out[0]


def test_every_vocabulary_word_is_one_token(tmp_path):
    tok = CLIPTokenizer.from_pretrained(write_tiny_tokenizer(tmp_path))
    split = [w for w in tiny_vocab_words() if len(tok(w, add_special_tokens=False)["input_ids"]) != 1]
    assert split == []
