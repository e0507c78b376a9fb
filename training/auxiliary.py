"""Another NER corpus as one more annotator team (multi-task learning through the crowd layer).

Intermediate training (NER-BERT) trains on SciERC first and keeps only the encoder. This trains on both at
once: SciERC's sentences, their types mapped onto SciNER's (``--map-types``' presets, e.g. Task -> TaskName,
Method -> MethodName, Metric -> MetricName, Material -> DatasetName; the other types become ``O``), join the
gold as sentences of their own team. The crowd layer (:mod:`training.crowd_layer`) gives that team its own
label map, so SciERC's conventions (a broader "Method", no hyperparameters or metric values) are absorbed by
its map instead of the shared model that is exported and served.

Measured on 35 gold documents (docs/quality.md, session 35, one seed): -0.85 [-2.79, +1.37] dev F1 against the
gold alone, paired and cross-fitted. SciERC's team map moved furthest from the identity (0.093 against 0.035-0.052
for the student teams), yet the shared model still learned SciERC's habits (F1 with each model's bias): TaskName +8,
DatasetName +1, MethodName -3, MetricName -2, and the three types SciERC lacks (hyperparameter names and values,
metric values: its ``O``) -1 to -3. So it is a ``bench/quality.py`` option, not a training one.

Pure: records in, records out; ``bench/quality.py --auxiliary`` does the reading.
"""

from __future__ import annotations

from collections.abc import Sequence

from sciner.labels import OUTSIDE, split_tag
from sciner.records import Sentence
from training.crowd_layer import team_of

AUXILIARY_META = "auxiliary"  # meta key naming the corpus an auxiliary sentence came from


def map_tags(tags: Sequence[str | None], type_map: dict[str, str]) -> list[str | None]:
    """``B-X``/``I-X`` -> ``B-Y``/``I-Y`` where ``type_map[X] == Y``; a type the map lacks -> ``O``.

    A whole entity maps or drops together, so strict BIO stays strict BIO."""
    out: list[str | None] = []
    for tag in tags:
        if tag is None:
            out.append(None)
            continue
        prefix, etype = split_tag(tag)
        out.append(OUTSIDE if etype is None or etype not in type_map else f"{prefix}-{type_map[etype]}")
    return out


def auxiliary_sentences(
    rows: Sequence[Sentence], type_map: dict[str, str], corpus: str, gold_teams: set[str]
) -> list[Sentence]:
    """``rows`` (another corpus, labelled in its own scheme) as training sentences in SciNER's types.

    Each keeps its ``source``, so the crowd layer sees its repository as a team of its own; ``corpus`` names it
    in ``meta`` and in the sentence ids (``aux:<corpus>:<id>``) so that nothing collides with gold ids.
    Raises ``ValueError`` when a row has no labels or no source (the crowd layer could not keep it apart),
    or when its source is one of the gold's teams."""
    out: list[Sentence] = []
    for row in rows:
        if row.tags is None:
            raise ValueError(f"auxiliary sentence {row.id!r} has no tags")
        team = team_of(row)
        if team is None:
            raise ValueError(f"auxiliary sentence {row.id!r} has no source: its labels would not get a team map")
        if team in gold_teams:
            raise ValueError(f"auxiliary sentence {row.id!r} comes from {team!r}, one of the gold's teams")
        out.append(
            Sentence(
                id=f"aux:{corpus}:{row.id}",
                tokens=list(row.tokens),
                tags=map_tags(row.tags, type_map),
                doc_id=f"aux:{corpus}:{row.doc_id}",
                source=row.source,
                meta={**row.meta, AUXILIARY_META: corpus},
            )
        )
    return out
