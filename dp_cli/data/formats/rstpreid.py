"""RSTPReid: `data_captions.json`, a list of {id, img_path, captions, split}.

Person ids count from 0 on disk (IRRA asserts the train ids are 0..N-1); splits train/val/test;
images under `imgs/`.
"""

from __future__ import annotations

from dp_cli.data.formats.base import JsonListFormat


class RstpReidFormat(JsonListFormat):
    name = "rstpreid"
    filename = "data_captions.json"
    path_key = "img_path"
    keys = ("id", "img_path", "captions", "split")
    splits = ("train", "val", "test")
    irra_dir = "RSTPReid"
    id_base = 0
