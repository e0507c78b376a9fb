"""How one adaptive batch is cut up for the predictor (pure functions).

An adaptive batch of texts is split into ``parts`` that run at the same time in separate threads,
each a single-threaded ONNX Runtime run: on a few CPU cores this beats one multi-threaded run
(small ONNX batches parallelise poorly inside one run) and keeps one batcher per worker. Each part
is cut into chunks of at most ``budget`` characters, one ``predict_texts`` call each, so a few
huge texts cannot blow memory; the predictor then sorts all windows of a call by length and runs
them in token-budgeted ONNX batches.
"""

from __future__ import annotations


def char_budget_chunks(lengths: list[int], budget: int) -> list[list[int]]:
    """Group text indices, shortest first, into chunks of at most ``budget`` characters; a text
    longer than the budget gets a chunk of its own. Bounds the memory of one predictor call and
    keeps a few huge texts from padding the short ones (the predictor sorts windows within a call)."""
    chunks: list[list[int]] = []
    current: list[int] = []
    size = 0
    for i in sorted(range(len(lengths)), key=lengths.__getitem__):
        n = lengths[i]
        if current and size + n > budget:
            chunks.append(current)
            current, size = [], 0
        current.append(i)
        size += n
    if current:
        chunks.append(current)
    return chunks


def split_parts(lengths: list[int], parts: int, budget: int) -> list[list[list[int]]]:
    """Deal the texts, shortest first, round-robin into at most ``parts`` parts of similar size,
    then cut each part into character-budget chunks. Returns parts → chunks → text indices."""
    parts = max(1, min(parts, len(lengths)))
    order = sorted(range(len(lengths)), key=lengths.__getitem__)
    dealt = [order[k::parts] for k in range(parts)]
    out: list[list[list[int]]] = []
    for members in dealt:
        if members:
            chunks = char_budget_chunks([lengths[i] for i in members], budget)
            out.append([[members[j] for j in chunk] for chunk in chunks])
    return out
