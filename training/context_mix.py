"""Documents read whole and sentence by sentence in one training run (``SCINER_DOCUMENT_CONTEXT_SHARE``).

A model trained on whole documents only leans on the context it was trained with: read one sentence at
a time it loses (docs/quality.md, ``student-doc``), and a client sending one sentence gets that reading.
Drawn afresh each epoch, a share of the training documents is read whole (windows cross sentence
boundaries) and the rest sentence by sentence, so one model learns both readings. A window of a whole
document holds several sentences, so those windows are batched apart, in smaller batches holding about as
many word pieces as a batch of sentences: the steps an epoch takes stay about as many as without the mix.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

from sciner.records import Sentence
from training.batching import bucketed_batches
from training.features import Example


def documents_read_whole(sentences: Sequence[Sentence], share: float, rng: random.Random) -> set[str]:
    """The documents (``doc_id``) drawn to be read whole this epoch: ``share`` of them, rounded."""
    documents = sorted({s.doc_id for s in sentences if s.doc_id})
    return set(rng.sample(documents, round(share * len(documents))))


def mixed_examples(
    build: Callable[..., list[Example]],
    sentences: Sequence[Sentence],
    teams: Sequence[int] | None,
    whole: set[str],
) -> list[Example]:
    """Windows of the documents in ``whole`` read whole, then windows of every other sentence read on its
    own. ``build`` is :func:`training.features.build_examples` with everything but the sentences, their
    teams (one per sentence, or ``None``) and the reading bound."""
    read_whole = [i for i, s in enumerate(sentences) if s.doc_id in whole]
    read_alone = [i for i, s in enumerate(sentences) if s.doc_id not in whole]
    examples: list[Example] = []
    for indices, document_context in ((read_whole, True), (read_alone, False)):
        if indices:
            part_teams = [teams[i] for i in indices] if teams is not None else None
            examples += build([sentences[i] for i in indices], teams=part_teams, document_context=document_context)
    return examples


def epoch_batches(
    lengths: Sequence[int], whole: Sequence[bool], batch_size: int, rng: random.Random
) -> list[list[int]]:
    """:func:`training.batching.bucketed_batches` over one epoch's examples (``lengths`` in word pieces,
    ``whole`` true for a window of a document read whole). With one reading only this is exactly
    ``bucketed_batches(lengths, batch_size, rng)``; with both, windows of whole documents go in batches of
    :func:`whole_batch_size` and the two kinds of batch are shuffled together."""
    on_own = [i for i, w in enumerate(whole) if not w]
    read_whole = [i for i, w in enumerate(whole) if w]
    if not on_own or not read_whole:
        return bucketed_batches(list(lengths), batch_size, rng)
    size = whole_batch_size(batch_size, [lengths[i] for i in on_own], [lengths[i] for i in read_whole])
    batches = [[on_own[j] for j in b] for b in bucketed_batches([lengths[i] for i in on_own], batch_size, rng)]
    batches += [[read_whole[j] for j in b] for b in bucketed_batches([lengths[i] for i in read_whole], size, rng)]
    rng.shuffle(batches)
    return batches


def whole_batch_size(batch_size: int, sentence_lengths: Sequence[int], window_lengths: Sequence[int]) -> int:
    """Windows of whole documents per batch: as many word pieces as ``batch_size`` sentences, on average."""
    sentence_mean = sum(sentence_lengths) / len(sentence_lengths)
    window_mean = sum(window_lengths) / len(window_lengths)
    return max(1, round(batch_size * sentence_mean / window_mean))


def steps_per_epoch(
    examples: Sequence[Example], with_entity: Sequence[int], entity_free: Sequence[int], n_free: int, batch_size: int
) -> int:
    """The steps an epoch of :func:`epoch_batches` takes, for the learning-rate schedule: every example with
    an entity and ``n_free`` entity-free ones (each kind of reading drawn in proportion). With one reading
    only, ``ceil((len(with_entity) + n_free) / batch_size)``."""
    total = len(with_entity) + n_free
    whole_free = sum(examples[i].whole for i in entity_free)
    n_whole = sum(examples[i].whole for i in with_entity)
    n_whole += round(min(n_free, len(entity_free)) * whole_free / len(entity_free)) if entity_free else 0
    if n_whole in (0, total):
        return -(-total // batch_size)
    size = whole_batch_size(
        batch_size, [len(e.input_ids) for e in examples if not e.whole], [len(e.input_ids) for e in examples if e.whole]
    )
    return -(-(total - n_whole) // batch_size) + -(-n_whole // size)
