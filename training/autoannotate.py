"""Auto-annotation of papers with the shared predictor, keeping only confident labels.

Masking rule (:func:`mask_prediction`, pure):

- an entity whose score reaches its class threshold keeps its BIO tags;
- the words of an entity below its threshold become ``None`` (unknown, ``-100`` in training),
  never ``O``: a missed entity taught as ``O`` would teach the next model to miss it too;
- an ``O`` word keeps ``O`` only if its probability reaches ``o_floor``, else it is ``None``.
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from sciner.decoding import WordSpan, spans_to_entities
from sciner.encoding import document_chunks
from sciner.labels import OUTSIDE, label_words
from sciner.paper_records import Paper
from sciner.pretokenize import split_sentences
from sciner.records import Entity, Sentence, Token
from training.progress import progress_bar

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Masked:
    tags: list[str | None]
    accepted: list[WordSpan]
    rejected: list[WordSpan]


def mask_prediction(
    tags: Sequence[str],
    word_scores: Sequence[float],
    spans: Sequence[WordSpan],
    thresholds: Mapping[str, float],
    o_floor: float,
    default_threshold: float = 0.9,
) -> Masked:
    """Tags for training from one predicted sentence (see the module docstring)."""
    out: list[str | None] = [
        OUTSIDE if tag == OUTSIDE and score >= o_floor else None for tag, score in zip(tags, word_scores, strict=True)
    ]
    accepted, rejected = [], []
    for span in spans:
        if span.score >= thresholds.get(span.label, default_threshold):
            label_words(out, span.start, span.end, span.label)
            accepted.append(span)
        else:
            for i in range(span.start, span.end):
                out[i] = None
            rejected.append(span)
    return Masked(out, accepted, rejected)


def chosen_scores(probs: np.ndarray, tags: Sequence[str], labels: Sequence[str]) -> np.ndarray:
    """Probability of the decoded tag of each word."""
    if not len(tags):
        return np.zeros(0)
    index = {lab: i for i, lab in enumerate(labels)}
    return probs[np.arange(len(tags)), [index[t] for t in tags]]


@dataclass(slots=True)
class AutoSentence:
    sentence: Sentence  # tokens + masked tags, for training
    text: str  # the sentence as it reads in the paper
    entities: list[Entity]  # every predicted entity (offsets in ``text``), for review
    confidence: float  # lowest probability of a decoded tag in the sentence
    kept: bool  # carries at least one known tag


@dataclass
class AutoAnnotation:
    sentences: list[AutoSentence]
    stats: dict = field(default_factory=dict)

    @property
    def training_sentences(self) -> list[Sentence]:
        return [a.sentence for a in self.sentences if a.kept]


def paper_sentences(paper: Paper) -> list[tuple[str, list[Token]]]:
    """Sentences of a paper as (sentence text, tokens with offsets into that text)."""
    out = []
    for sent in split_sentences(paper.text):
        if not sent:
            continue
        base = sent[0].start
        text = paper.text[base : sent[-1].end]
        out.append((text, [Token(t.text, t.start - base, t.end - base) for t in sent]))
    return out


def annotate_papers(
    predict: Callable[[list[list[str]], Sequence[str | None]], list],
    labels: Sequence[str],
    papers: Sequence[Paper],
    thresholds: Mapping[str, float],
    o_floor: float,
    *,
    default_threshold: float = 0.9,
    round_id: int | None = None,
    chunk_sentences: int = 256,
    progress: bool = True,
) -> AutoAnnotation:
    """Split, predict (``predict`` = :meth:`Predictor.predict_sentences`, each paper's sentences together
    in one chunk, so a model trained with document context reads them as one text), mask."""
    items: list[tuple[Paper, int, str, list[Token]]] = []
    for paper in papers:
        for k, (text, tokens) in enumerate(paper_sentences(paper)):
            items.append((paper, k, text, tokens))
    result: list[AutoSentence] = []
    accepted: Counter[str] = Counter()
    rejected: Counter[str] = Counter()
    masked_tokens = tokens_total = 0
    bar = progress_bar(len(items), "auto-annotate", "sent", progress)
    papers_of = [paper.paper_id for paper, _, _, _ in items]
    for part in document_chunks(papers_of, chunk_sentences):
        chunk = items[part.start : part.stop]
        preds = predict([[t.text for t in toks] for _, _, _, toks in chunk], papers_of[part.start : part.stop])
        for (paper, k, text, tokens), pred in zip(chunk, preds, strict=True):
            scores = chosen_scores(pred.probs, pred.tags, labels)
            m = mask_prediction(pred.tags, scores, pred.spans, thresholds, o_floor, default_threshold)
            accepted.update(s.label for s in m.accepted)
            rejected.update(s.label for s in m.rejected)
            masked_tokens += sum(t is None for t in m.tags)
            tokens_total += len(m.tags)
            confidence = float(scores.min()) if len(scores) else 1.0
            meta = {"auto": True, "confidence": round(confidence, 6)}
            if round_id is not None:
                meta["round"] = round_id
            sentence = Sentence(
                id=f"{paper.paper_id}#s{k}",
                tokens=[t.text for t in tokens],
                tags=m.tags,
                doc_id=paper.paper_id,
                source=f"paper:{paper.paper_id}",
                meta=meta,
            )
            result.append(
                AutoSentence(
                    sentence,
                    text,
                    spans_to_entities(text, tokens, pred.spans),
                    confidence,
                    any(t is not None for t in m.tags),
                )
            )
        bar.update(len(chunk))
    bar.close()
    kept = sum(a.kept for a in result)
    stats = {
        "papers": len(papers),
        "sentences": len(result),
        "sentences_kept": kept,
        "tokens": tokens_total,
        "masked_tokens": masked_tokens,
        "masked_fraction": masked_tokens / tokens_total if tokens_total else 0.0,
        "entities_accepted": sum(accepted.values()),
        "entities_rejected": sum(rejected.values()),
        "accepted_per_class": dict(accepted),
        "rejected_per_class": dict(rejected),
    }
    log.info(
        "auto-annotated %d sentences of %d papers: %d kept, %d entities accepted, %d rejected, %.1f%% tokens masked",
        len(result),
        len(papers),
        kept,
        stats["entities_accepted"],
        stats["entities_rejected"],
        100 * stats["masked_fraction"],
    )
    return AutoAnnotation(result, stats)


def has_entity(sentence: Sentence) -> bool:
    return any(t is not None and t != OUTSIDE for t in sentence.tags or [])


def balance_empty(sentences: Sequence[Sentence], ratio: float, seed: int) -> tuple[list[Sentence], int]:
    """Keep every sentence carrying an entity tag and at most ``ratio`` times as many without one.

    Which entity-free sentences stay is a seeded pick by sentence id (stable across runs and machines);
    the input order is kept. Returns the kept sentences and how many were dropped.
    """
    with_entity = sum(has_entity(s) for s in sentences)
    empty = [i for i, s in enumerate(sentences) if not has_entity(s)]
    budget = int(ratio * with_entity)
    if len(empty) <= budget:
        return list(sentences), 0

    def rank(i: int) -> str:
        return hashlib.sha256(f"{seed}:{sentences[i].id}".encode()).hexdigest()

    keep_empty = set(sorted(empty, key=rank)[:budget])
    kept = [s for i, s in enumerate(sentences) if has_entity(s) or i in keep_empty]
    return kept, len(sentences) - len(kept)


def lowest_confidence(sentences: Sequence[AutoSentence], count: int) -> list[AutoSentence]:
    """The ``count`` least confident sentences (ties: in document order)."""
    order = sorted(range(len(sentences)), key=lambda i: (sentences[i].confidence, i))
    return [sentences[i] for i in order[:count]]
