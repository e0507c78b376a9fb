"""Mention replacement (Dai & Adel 2020, "An analysis of simple data augmentation for named entity recognition").

Each epoch, every gold mention of a training sentence is swapped, with probability ``SCINER_MENTION_SWAP``, for
another mention of its type drawn from the training set's distinct mentions (each distinct name equally likely,
so rare names are read as often as ``BERT``). The sentence's words and IOB2 tags are rebuilt around the new
mention. A model that meets a name in many contexts, and a context with many names, has to read the context;
one that sees ``BERT`` labelled 1,030 times can get by memorising names, which a team never seen does not reward.

Types in ``SCINER_MENTION_SWAP_KEPT_TYPES`` have no names in the pool, so their mentions stay where they are.

Pure functions over :class:`sciner.records.Sentence`; the trainer calls :func:`swap_mentions` once per epoch.
Sentences with teacher distributions (distillation) keep their words, as those distributions are per word.
"""

from __future__ import annotations

import random
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, replace

from sciner.decoding import tags_to_spans
from sciner.labels import label_words
from sciner.records import Sentence

Mention = tuple[str, ...]


@dataclass(frozen=True, slots=True)
class MentionPool:
    """The distinct mentions of each entity type in some labelled sentences, in first-seen order."""

    by_type: dict[str, tuple[Mention, ...]]

    @classmethod
    def of(cls, sentences: Iterable[Sentence], kept_types: Collection[str] = ()) -> MentionPool:
        """The pool of ``sentences``' mentions; types in ``kept_types`` get none, so their mentions stay."""
        seen: dict[str, dict[Mention, None]] = {}
        for sentence in sentences:
            for start, end, label in mentions_of(sentence):
                if label not in kept_types:
                    seen.setdefault(label, {})[tuple(sentence.tokens[start:end])] = None
        return cls({label: tuple(names) for label, names in seen.items()})

    def __len__(self) -> int:
        return sum(len(names) for names in self.by_type.values())


def mentions_of(sentence: Sentence) -> list[tuple[int, int, str]]:
    """``(start, end, type)`` of the sentence's gold mentions (an unknown ``None`` tag is in none of them)."""
    return [(s.start, s.end, s.label) for s in tags_to_spans(sentence.tags or [])]


def swap_sentence(sentence: Sentence, pool: MentionPool, probability: float, rng: random.Random) -> Sentence:
    """The sentence with each mention swapped, with ``probability``, for a different mention of its type
    from ``pool``; the sentence itself when nothing was swapped."""
    if not sentence.tags:
        return sentence
    tokens: list[str] = []
    tags: list[str | None] = []
    cursor = 0
    for start, end, label in mentions_of(sentence):
        if rng.random() >= probability:
            continue
        names = pool.by_type.get(label, ())
        original = tuple(sentence.tokens[start:end])
        name = names[rng.randrange(len(names))] if names else original
        if name == original:
            continue
        tokens += sentence.tokens[cursor:start]
        tags += sentence.tags[cursor:start]
        tags += [None] * len(name)
        label_words(tags, len(tokens), len(tokens) + len(name), label)
        tokens += name
        cursor = end
    if cursor == 0:
        return sentence
    tokens += sentence.tokens[cursor:]
    tags += sentence.tags[cursor:]
    return replace(sentence, tokens=tokens, tags=tags)


def swap_mentions(
    sentences: Sequence[Sentence],
    pool: MentionPool,
    probability: float,
    rng: random.Random,
    keep: Collection[str] = (),
) -> list[Sentence]:
    """One epoch's sentences: each swapped by :func:`swap_sentence`, in order, except those whose id is in
    ``keep`` (their words must stay as they are, e.g. teacher distributions per word)."""
    if probability <= 0:
        return list(sentences)
    return [s if s.id in keep else swap_sentence(s, pool, probability, rng) for s in sentences]
