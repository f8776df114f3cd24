"""Dataset formats behind one small Protocol, found by name: native, cuhk-pedes, icfg-pedes, rstpreid, tbps-clip."""

from __future__ import annotations

from pathlib import Path

from dp_cli.data.formats.base import IMAGES_DIR, DatasetFormat, record_id_from_path
from dp_cli.data.formats.cuhk_pedes import CuhkPedesFormat
from dp_cli.data.formats.icfg_pedes import IcfgPedesFormat
from dp_cli.data.formats.native import NativeFormat
from dp_cli.data.formats.rstpreid import RstpReidFormat
from dp_cli.data.formats.tbps_clip import TbpsClipFormat
from dp_cli.errors import DataError

# The one registry: format name -> class.
FORMATS: dict[str, type] = {
    "native": NativeFormat,
    "cuhk-pedes": CuhkPedesFormat,
    "icfg-pedes": IcfgPedesFormat,
    "rstpreid": RstpReidFormat,
    "tbps-clip": TbpsClipFormat,
}
FORMAT_NAMES: tuple[str, ...] = tuple(FORMATS)


def get_format(name: str) -> DatasetFormat:
    """The format registered under `name`; unknown names raise DataError listing the known ones."""
    key = name.strip().lower().replace("_", "-")
    key = {"cuhkpedes": "cuhk-pedes", "icfgpedes": "icfg-pedes", "rstp": "rstpreid", "dp-native": "native",
           "tbpsclip": "tbps-clip"}.get(key, key)
    if key not in FORMATS:
        raise DataError(f"unknown dataset format {name!r}", hint=f"use one of {', '.join(FORMAT_NAMES)}")
    return FORMATS[key]()


def format_for_file(path: Path) -> DatasetFormat | None:
    """The format whose annotation file (or one of them) has this name, or None."""
    for cls in FORMATS.values():
        if path.name in getattr(cls, "filenames", (cls.filename,)):
            return cls()
    return None


__all__ = ["FORMATS", "FORMAT_NAMES", "IMAGES_DIR", "DatasetFormat", "format_for_file", "get_format",
           "record_id_from_path"]
