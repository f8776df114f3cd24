"""Copy a trained toy model into dp_cli/assets/toy-model (the model `dp edit` and `dp demo` use by default).

    .venv/bin/python examples/toy/ship.py build/toy/run/model
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

LIMIT = 20 * 2 ** 20
TARGET = Path(__file__).resolve().parents[2] / "dp_cli" / "assets" / "toy-model"


def main() -> None:
    source = Path(sys.argv[1] if len(sys.argv) > 1 else "build/toy/run/model")
    from dp_models.dp_model import DPModel

    DPModel.from_pretrained(str(source))  # refuse anything that does not load
    size = sum(f.stat().st_size for f in source.rglob("*") if f.is_file())
    if size > LIMIT:
        sys.exit(f"{source}: {size / 2 ** 20:.1f} MB is over the 20 MB limit for the repository")
    tmp = TARGET.with_name(TARGET.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(source, tmp)
    shutil.rmtree(TARGET, ignore_errors=True)
    tmp.rename(TARGET)
    print(f"shipped {source} -> {TARGET} ({size / 2 ** 20:.1f} MB)")


if __name__ == "__main__":
    main()
