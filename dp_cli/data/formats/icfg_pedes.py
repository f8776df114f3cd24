"""ICFG-PEDES: `ICFG-PEDES.json`, the CUHK-PEDES field names, splits train/test only.

Person ids count from 0 on disk (IRRA asserts the train ids are 0..N-1); images under `imgs/`.
"""

from __future__ import annotations

from dp_cli.data.formats.base import JsonListFormat


class IcfgPedesFormat(JsonListFormat):
    name = "icfg-pedes"
    filename = "ICFG-PEDES.json"
    splits = ("train", "test")
    irra_dir = "ICFG-PEDES"
    id_base = 0
    with_tokens = True
