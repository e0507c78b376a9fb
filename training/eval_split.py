"""The gate's evaluation split, carved from gold train by document. Pure.

A document goes to the evaluation split when the hash of its id (salted) falls below the fraction, so
its side never depends on the other documents: adding documents to gold train never moves one that
was already judged on into training. Sentences without a document id are their own document.
Training, early stopping and threshold calibration never see the evaluation split.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sciner.records import Sentence

_HASH_SPACE = float(1 << 64)


def document_of(sentence: Sentence) -> str:
    """The unit the split and the bootstrap work with: the document id, else the sentence id."""
    return sentence.doc_id or sentence.id


def document_position(doc_id: str, salt: str) -> float:
    """Where a document id falls in [0, 1): the first 8 bytes of ``sha256(salt:doc_id)``."""
    digest = hashlib.sha256(f"{salt}:{doc_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / _HASH_SPACE


def eval_documents(doc_ids: Iterable[str], fraction: float, salt: str) -> set[str]:
    """Documents whose hash position is below ``fraction``; at least one, never all (when there are two)."""
    ids = sorted(set(doc_ids))
    chosen = {d for d in ids if document_position(d, salt) < fraction}
    if not chosen and ids:
        chosen = {min(ids, key=lambda d: document_position(d, salt))}
    if len(chosen) == len(ids) and len(ids) > 1:
        chosen.discard(max(ids, key=lambda d: document_position(d, salt)))
    return chosen


def sentences_sha256(sentences: Sequence[Sentence]) -> str:
    """Content hash of a split as the gate sees it (ids, documents, tokens, tags; order kept)."""
    h = hashlib.sha256()
    for s in sentences:
        row = {"id": s.id, "doc_id": s.doc_id, "tokens": s.tokens, "tags": s.tags}
        h.update(json.dumps(row, ensure_ascii=False, sort_keys=True).encode())
        h.update(b"\n")
    return h.hexdigest()


@dataclass(frozen=True)
class EvalSplit:
    """Gold train without the evaluation documents, the evaluation split, and how it was made."""

    train: list[Sentence]
    eval: list[Sentence]
    source: str  # "carved:<fraction>:<salt>" or "file:<path>"
    sha256: str  # content hash of the evaluation sentences
    documents: tuple[str, ...]  # evaluation document ids, sorted

    @property
    def tags(self) -> dict[str, str]:
        """What every registered version records about the split it was judged on."""
        return {
            "eval_split": self.source,
            "eval_split_sha256": self.sha256,
            "eval_split_documents": str(len(self.documents)),
        }


def carve(train: Sequence[Sentence], fraction: float, salt: str) -> EvalSplit:
    """Split gold train by document id hash."""
    chosen = eval_documents((document_of(s) for s in train), fraction, salt)
    kept = [s for s in train if document_of(s) not in chosen]
    held = [s for s in train if document_of(s) in chosen]
    return EvalSplit(kept, held, f"carved:{fraction:g}:{salt}", sentences_sha256(held), tuple(sorted(chosen)))


def from_file(train: Sequence[Sentence], evaluation: Sequence[Sentence], path: str) -> EvalSplit:
    """A given evaluation file; gold train documents (and sentences) that appear in it leave training."""
    docs = {document_of(s) for s in evaluation}
    seen = {tuple(s.tokens) for s in evaluation}
    kept = [s for s in train if document_of(s) not in docs and tuple(s.tokens) not in seen]
    return EvalSplit(kept, list(evaluation), f"file:{path}", sentences_sha256(evaluation), tuple(sorted(docs)))
