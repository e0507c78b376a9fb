"""Helpers shared by the benchmark scripts."""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from sciner.labels import OUTSIDE
from sciner.records import Sentence
from training.crowd_layer import team_of

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
RESULTS = REPO / "bench" / "results"


def model_bench_parser(doc: str | None, repeats: int) -> argparse.ArgumentParser:
    """Arguments shared by the benchmarks that run a model folder over gold dev sentences."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=REPO / "var" / "bench" / "quality-model")
    ap.add_argument("--data", type=Path, default=SHARED / "sciner" / "dev.jsonl")
    ap.add_argument("--sentences", type=int, default=512)
    ap.add_argument("--repeats", type=int, default=repeats, help="interleaved runs; medians reported")
    return ap


def machine() -> str:
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"


# settings whose values may be credentials: never written into a result file
_SECRET_PARTS = ("TOKEN", "SECRET", "PASSWORD", "KEY", "URI", "URL")


def settings_env() -> dict[str, str]:
    """The ``SCINER_*`` variables a run was started with (its settings overrides), credentials left out.

    A result file records them beside its command line, so that the command it shows reproduces the run.
    """
    return {
        k: v
        for k, v in sorted(os.environ.items())
        if k.startswith("SCINER_") and not any(part in k for part in _SECRET_PARTS)
    }


def env_prefix(env: dict[str, str], root: Path = REPO) -> str:
    """Settings variables as the shell prefix of a command: ``SCINER_SEED=43 `` (empty without any). A value that is
    an absolute path inside ``root`` (the checkout) is written relative to it, so the command runs in any clone."""

    def shown(value: str) -> str:
        path = Path(value)
        return path.relative_to(root).as_posix() if path.is_absolute() and path.is_relative_to(root) else value

    return "".join(f"{k}={shown(v)} " for k, v in env.items())


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def sample_by_document(sentences: list[Sentence], max_sentences: int, seed: int) -> list[Sentence]:
    """Whole documents in a seeded random order until ``max_sentences`` is reached."""
    docs: dict[str, list[Sentence]] = {}
    for s in sentences:
        docs.setdefault(s.doc_id, []).append(s)
    order = sorted(docs)
    random.Random(seed).shuffle(order)
    out: list[Sentence] = []
    for d in order:
        if len(out) >= max_sentences:
            break
        out.extend(docs[d])
    return out[:max_sentences]


def halves_by_document(dev: Sequence[Sentence]) -> list[list[int]]:
    """Sentence indices of the even and the odd documents (sorted by id), in dev order: the two halves that
    cross-fitting fits on and scores on (``bench/quality.py``, ``bench/type_bias.py``). Pure."""
    docs = {d: k for k, d in enumerate(sorted({s.doc_id for s in dev}))}
    return [[i for i, s in enumerate(dev) if docs[s.doc_id] % 2 == half] for half in (0, 1)]


def sentences_by_team(dev: Sequence[Sentence]) -> dict[str, list[int]]:
    """Dev sentence indices per annotator team (``training.crowd_layer.team_of``), teams with the most sentences
    first (``?`` for no team). Pure."""
    by: dict[str, list[int]] = defaultdict(list)
    for i, s in enumerate(dev):
        by[team_of(s) or "?"].append(i)
    return dict(sorted(by.items(), key=lambda kv: (-len(kv[1]), kv[0])))


def folds_by_team(dev: Sequence[Sentence]) -> list[list[int]]:
    """:func:`sentences_by_team`'s groups, teams in sorted order: the folds a bias is fitted across when each team is
    decoded with the bias fitted on all the others, as the served model meets a team its dev did not hold. Pure."""
    teams = sentences_by_team(dev)
    return [teams[t] for t in sorted(teams)]


def save_result(name: str, payload: dict, markdown: str) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(payload, indent=2))
    (RESULTS / f"{name}.md").write_text(markdown)


def put_block(path: Path, section: str, begin: str, end: str, body: str) -> None:
    """Write ``body`` between the ``begin``/``end`` markers in ``section`` of a markdown file: an earlier
    block between the same markers is replaced; other blocks and hand-written text are kept; the
    section is appended when the file lacks it."""
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmarks\n"
    block = f"{begin}\n{body.strip()}\n{end}\n"
    if section not in text:
        text = text.rstrip("\n") + f"\n\n{section}\n\n{block}"
    elif begin in text and end in text:
        text = text[: text.index(begin)] + block.rstrip("\n") + text[text.index(end) + len(end) :]
    else:
        start = text.index(section)
        nxt = text.find("\n## ", start + len(section))
        at = nxt + 1 if nxt != -1 else len(text)
        text = text[:at].rstrip("\n") + "\n\n" + block + ("\n" + text[at:] if nxt != -1 else "")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def gold_tags(sentences: Sequence[Sentence]) -> list[list[str]]:
    """The gold IOB2 tags of each sentence, unlabelled words as ``O``: what seqeval scores against. Pure."""
    return [[t or OUTSIDE for t in (s.tags or [])] for s in sentences]
