"""Move an encoder to a lent GPU machine and a trained model back, through a small file-size limit.

The workplace's GPU machine takes a 64 MiB working tree and returns files of at most 16 MiB, so a MiniLM
checkpoint (91 MB in fp32) travels as fp16 (45 MB; training and scoring go on in fp32 on both sides):

    .venv/bin/python bench/gpu_transfer.py shrink <encoder folder> .gpu/minilm     # here: fp16 copy to carry
    python3 bench/gpu_transfer.py grow .gpu/minilm /tmp/minilm                     # there: fp32 encoder folder
    python3 bench/gpu_transfer.py pack /tmp/ens/student $OUT --extra /tmp/ens/run.json   # there: model -> parts
    .venv/bin/python bench/gpu_transfer.py unpack <files_at> var/bench/ensemble-student  # here: parts -> model

Integer tensors (position ids) keep their type; only floating-point weights are halved. fp16 keeps MiniLM's
weights to about 3 significant digits, far below what int8 serving rounds away.
"""

from __future__ import annotations

import argparse
import shutil
import tarfile
from pathlib import Path

WEIGHTS = "model.safetensors"
HALF = "model.fp16.safetensors"
PART = "student.fp16.part"
REST = "student-rest.tgz"
PART_BYTES = 15 * 1024 * 1024
RUN_DIR = "gpu-run"  # unpack puts the training run's own files here, beside the model (bench/quality.py reads it)
ONNX_DIR = "onnx"  # sciner.model_dir.ONNX_DIR: this script runs where sciner's dependencies may be missing


def convert(src: Path, dst: Path, half: bool) -> None:
    """``src`` safetensors -> ``dst`` with floating-point tensors in fp16 (``half``) or fp32."""
    import torch
    from safetensors.torch import load_file, save_file

    dtype = torch.float16 if half else torch.float32
    tensors = load_file(str(src))
    save_file(
        {k: (v.to(dtype) if v.is_floating_point() else v).contiguous() for k, v in tensors.items()},
        str(dst),
        metadata={"format": "pt"},
    )


def shrink(src: Path, dst: Path) -> None:
    dst.mkdir(parents=True, exist_ok=True)
    for f in src.iterdir():
        if f.is_file() and f.name != WEIGHTS and f.suffix in (".json", ".txt", ".model"):
            shutil.copy2(f, dst / f.name)
    convert(src / WEIGHTS, dst / HALF, half=True)


def grow(src: Path, dst: Path) -> None:
    dst.mkdir(parents=True, exist_ok=True)
    for f in src.iterdir():
        if f.is_file() and f.name != HALF:
            shutil.copy2(f, dst / f.name)
    convert(src / HALF, dst / WEIGHTS, half=False)


def pack(model_dir: Path, out: Path, extra: list[Path]) -> None:
    """``model_dir``'s weights as fp16 parts of at most 15 MiB, everything else but its ONNX files (exported again
    from the checkpoint where the model is scored) and ``extra`` in one tgz."""
    out.mkdir(parents=True, exist_ok=True)
    half = out / HALF
    convert(model_dir / "hf" / WEIGHTS, half, half=True)
    data = half.read_bytes()
    half.unlink()
    for k in range(0, len(data), PART_BYTES):
        (out / f"{PART}{k // PART_BYTES}").write_bytes(data[k : k + PART_BYTES])
    with tarfile.open(out / REST, "w:gz") as tar:
        for f in sorted(model_dir.rglob("*")):
            if f.is_file() and f.name != WEIGHTS and ONNX_DIR not in f.relative_to(model_dir).parts:
                tar.add(f, arcname=str(Path("model") / f.relative_to(model_dir)))
        for f in extra:
            if f.is_file():
                tar.add(f, arcname=str(Path("extra") / f.name))


def unpack(parts_dir: Path, dst: Path) -> None:
    """The model folder ``pack`` sent (fp32 weights again), plus its extra files under ``dst/extra``."""
    staging = dst.with_name(f".{dst.name}.unpacking")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    with tarfile.open(required_file(parts_dir, REST), "r:gz") as tar:
        tar.extractall(staging, filter="data")
    model = staging / "model"
    half = staging / HALF
    parts = sorted(parts_dir.glob(f"{PART}*"), key=lambda p: int(p.name.removeprefix(PART)))
    half.write_bytes(b"".join(p.read_bytes() for p in parts))
    convert(half, model / "hf" / WEIGHTS, half=False)
    half.unlink()
    if (staging / "extra").is_dir():
        shutil.move(staging / "extra", model / RUN_DIR)
    shutil.rmtree(dst, ignore_errors=True)
    model.rename(dst)
    shutil.rmtree(staging)


def required_file(folder: Path, name: str) -> Path:
    path = folder / name
    if not path.is_file():
        raise SystemExit(f"{path}: not there (pack writes it)")
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("action", choices=("shrink", "grow", "pack", "unpack"))
    ap.add_argument("src", type=Path)
    ap.add_argument("dst", type=Path)
    ap.add_argument("--extra", type=Path, action="append", default=[], help="with pack: files sent beside the model")
    args = ap.parse_args()
    if args.action == "pack":
        pack(args.src, args.dst, args.extra)
    elif args.action == "unpack":
        unpack(args.src, args.dst)
    else:
        {"shrink": shrink, "grow": grow}[args.action](args.src, args.dst)


if __name__ == "__main__":
    main()
