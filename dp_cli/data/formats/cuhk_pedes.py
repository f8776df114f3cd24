"""CUHK-PEDES: `reid_raw.json`, a list of {split, captions, file_path, id, processed_tokens}.

Person ids count from 1 on disk (IRRA subtracts 1 and asserts the train ids are then 0..N-1);
splits train/val/test; images under `imgs/`.
"""

from __future__ import annotations

from dp_cli.data.formats.base import JsonListFormat


class CuhkPedesFormat(JsonListFormat):
    name = "cuhk-pedes"
    filename = "reid_raw.json"
    splits = ("train", "val", "test")
    irra_dir = "CUHK-PEDES"
    id_base = 1
    with_tokens = True
