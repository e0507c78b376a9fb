"""The peer sciner's serving is compared with: what a user would otherwise run.

A plain FastAPI app with a Hugging Face ``pipeline("token-classification", aggregation_strategy="simple")``
on the same checkpoint's ``hf/`` folder (PyTorch, CPU, the library's defaults), behind uvicorn, with
sciner's request and answer shape (``POST /extract {"text"}`` -> ``{"entities": [...]}``) so the same
client measures both. ``GET /readyz`` answers 200 once the pipeline is loaded and warm.

    python -m bench.peer_server --model-dir <sciner model folder> --port 8001
"""

from __future__ import annotations

import argparse
from pathlib import Path

from fastapi import FastAPI
from pydantic import BaseModel

from sciner.model_dir import HF_DIR


class ExtractRequest(BaseModel):
    text: str


def create_app(hf_dir: Path) -> FastAPI:
    from transformers import pipeline

    from sciner import quiet

    quiet.install()
    pipe = pipeline(
        "token-classification", model=str(hf_dir), tokenizer=str(hf_dir), aggregation_strategy="simple", device=-1
    )
    pipe("Warm-up: BERT reaches 90.1 F1 on SQuAD.")
    app = FastAPI(title="peer: FastAPI + transformers pipeline")

    @app.get("/readyz")
    def readyz() -> dict[str, bool]:
        return {"ready": True}

    @app.post("/extract")
    def extract(request: ExtractRequest) -> dict:  # sync: FastAPI runs it in its thread pool
        found = pipe(request.text)
        return {
            "entities": [
                {
                    "start": int(e["start"]),
                    "end": int(e["end"]),
                    "text": request.text[int(e["start"]) : int(e["end"])],
                    "label": e["entity_group"],
                    "score": float(e["score"]),
                }
                for e in found
            ]
        }

    return app


def main() -> None:
    import uvicorn

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model-dir", type=Path, required=True, help="sciner model folder (its hf/ checkpoint is served)")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8001)
    args = ap.parse_args()
    hf_dir = args.model_dir / HF_DIR
    if not (hf_dir / "config.json").is_file():
        raise SystemExit(f"{args.model_dir}: no {HF_DIR}/ checkpoint (the peer serves the PyTorch model)")
    uvicorn.run(create_app(hf_dir), host=args.host, port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
