"""Document-level name consistency: a name the model labels at several mentions of a document is labelled
at its other mentions there too (pure functions, no model).

Why: most of the model's dev errors are gold entities it leaves out entirely (42% of them, with nothing
predicted over them; boundary and type errors are 10%, ``bench/error_types.py``), and the gold labels a
name at most of its mentions (median 83-89% of mentions of the names labelled 10+ times), while the model,
reading one sentence at a time, labels ``BERT`` in one sentence and not in the next. Copying a name to its
unlabelled mentions in the same document is the classic remedy (label consistency across a document,
Krishnan & Manning 2006); docs/quality.md has the measurements.

The rule, with its settings (``SCINER_PROPAGATION_*``):

* only names: the types of ``types`` (by default every type but the two value types, whose numbers
  mean something else at each mention);
* a name is a word sequence of at most ``max_words`` words, ``min_chars`` characters or more, that the
  model labelled ``min_mentions`` times or more in the document (one stray prediction is not copied);
  its type is the one the model gave it most often (on a tie, the one it gave first);
* a mention gets the name's label only where the model labelled none of its words (nothing the model
  predicted is changed or cut), longer names first, left to right; words match exactly (case included);
* the copied span's score is the best score of the model's own spans of that name in the document.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from sciner.decoding import WordSpan, spans_to_entities
from sciner.labels import OUTSIDE, label_words
from sciner.pretokenize import split_sentences
from sciner.records import Entity


@dataclass(frozen=True)
class PropagationRule:
    types: frozenset[str]
    min_mentions: int = 2
    max_words: int = 4
    min_chars: int = 2

    def as_metadata(self) -> dict:
        """The rule as a model folder records it (``sciner.json``, ``decoding.name_propagation``)."""
        return {
            "types": sorted(self.types),
            "min_mentions": self.min_mentions,
            "max_words": self.max_words,
            "min_chars": self.min_chars,
        }

    @classmethod
    def of(cls, types: Collection[str], min_mentions: int, max_words: int, min_chars: int) -> PropagationRule:
        return cls(frozenset(types), min_mentions, max_words, min_chars)


@dataclass(frozen=True)
class Name:
    label: str
    score: float


def document_groups(documents: Sequence[str | None] | None, n: int) -> list[list[int]]:
    """Sentence indices per document, in first-seen order; a sentence without a key is a document alone."""
    if documents is None:
        return [[i] for i in range(n)]
    if len(documents) != n:
        raise ValueError(f"{len(documents)} document keys for {n} sentences")
    groups: dict[str, list[int]] = {}
    alone: list[list[int]] = []
    for i, key in enumerate(documents):
        if key is None:
            alone.append([i])
        else:
            groups.setdefault(key, []).append(i)
    return [*groups.values(), *alone]


def document_names(
    words: Sequence[Sequence[str]], spans: Sequence[Sequence[WordSpan]], group: Sequence[int], rule: PropagationRule
) -> dict[tuple[str, ...], Name]:
    """The names of one document the rule copies, with their label and score."""
    labels: dict[tuple[str, ...], Counter[str]] = {}
    best: dict[tuple[str, ...], float] = {}
    for i in group:
        for span in spans[i]:
            key = tuple(words[i][span.start : span.end])
            if span.label not in rule.types or len(key) > rule.max_words or len("".join(key)) < rule.min_chars:
                continue
            labels.setdefault(key, Counter())[span.label] += 1
            best[key] = max(best.get(key, 0.0), span.score)
    return {
        key: Name(counts.most_common(1)[0][0], best[key])
        for key, counts in labels.items()
        if sum(counts.values()) >= rule.min_mentions
    }


def copy_names(
    words: Sequence[str], tags: list[str], names: dict[tuple[str, ...], Name], max_words: int
) -> list[WordSpan]:
    """Label the unlabelled mentions of ``names`` in one sentence (``tags`` is changed in place); the new spans."""
    added: list[WordSpan] = []
    for width in range(min(max_words, len(words)), 0, -1):
        for start in range(len(words) - width + 1):
            name = names.get(tuple(words[start : start + width]))
            if name is None or any(t != OUTSIDE for t in tags[start : start + width]):
                continue
            label_words(tags, start, start + width, name.label)
            added.append(WordSpan(start, start + width, name.label, name.score))
    return added


def propagate_names(
    words: Sequence[Sequence[str]],
    tags: Sequence[Sequence[str]],
    spans: Sequence[Sequence[WordSpan]],
    documents: Sequence[str | None] | None,
    rule: PropagationRule,
) -> list[tuple[list[str], list[WordSpan]]]:
    """Each sentence's tags and spans after the rule (see the module docstring), in input order; a sentence
    the rule leaves alone keeps equal tags and spans."""
    out = [(list(t), list(s)) for t, s in zip(tags, spans, strict=True)]
    for group in document_groups(documents, len(words)):
        names = document_names(words, spans, group, rule)
        if not names:
            continue
        for i in group:
            added = copy_names(words[i], out[i][0], names, rule.max_words)
            if added:
                out[i] = (out[i][0], sorted([*out[i][1], *added], key=lambda s: s.start))
    return out


def propagate_text(text: str, entities: Sequence[Entity], rule: PropagationRule) -> list[Entity]:
    """:func:`propagate_names` over one text's character-offset entities, the text one document: what the
    predictor does inside ``predict_texts``, for a text whose pieces were predicted apart (the service's long
    lane). Entities come back as ``predict_texts`` orders them (by sentence, then start); an entity that does
    not sit on the predictor's word boundaries leaves the text as it is."""
    sentences = split_sentences(text)
    first = {tok.start: (i, k) for i, sent in enumerate(sentences) for k, tok in enumerate(sent)}
    last = {tok.end: (i, k) for i, sent in enumerate(sentences) for k, tok in enumerate(sent)}
    words = [[tok.text for tok in sent] for sent in sentences]
    tags = [[OUTSIDE] * len(sent) for sent in sentences]
    spans: list[list[WordSpan]] = [[] for _ in sentences]
    for e in entities:
        a, b = first.get(e.start), last.get(e.end)
        if a is None or b is None or a[0] != b[0] or b[1] < a[1]:
            return list(entities)
        sentence, start, end = a[0], a[1], b[1] + 1
        spans[sentence].append(WordSpan(start, end, e.label, e.score))
        label_words(tags[sentence], start, end, e.label)
    for row in spans:
        row.sort(key=lambda s: s.start)
    changed = propagate_names(words, tags, spans, ["text"] * len(sentences), rule)
    out: list[Entity] = []
    for sent, (_, sent_spans) in zip(sentences, changed, strict=True):
        out += spans_to_entities(text, sent, sent_spans)
    return out
