"""Leave one annotator team out: the gold split so that a model is scored on a team it never learned from.

SciNER's hidden test set is one whole source, a team that labelled nothing in train or dev (shared data
README). Gold dev shares its teams with train, so a lever that fits the teams' habits (the crowd layer's
maps, the O-logit bias fitted on dev, names propagated the way a team marks them) can read well on dev and
not on a new team. This writes, under ``--out`` (default ``var/data/holdout-<team>``, outside the repo):

* ``train.jsonl``: gold train without the team's sentences (what the model learns from);
* ``dev.jsonl``: gold dev without them (what training picks its epoch and fits its bias on, as the service's
  model does on dev);
* ``team.jsonl``: every sentence the team labelled, train and dev (what it is scored on, like the hidden test).

    .venv/bin/python bench/team_holdout.py --team DivyanshuSheth/scientific-entity-recognition-anlp
    .venv/bin/python bench/quality.py --name holdout-divyanshusheth-crowd --epochs 1 \\
        --train var/data/holdout-divyanshusheth/train.jsonl --dev var/data/holdout-divyanshusheth/dev.jsonl
    .venv/bin/python bench/paired.py --name paired-holdout-divyanshusheth-team-stored --bias stored \\
        --dev var/data/holdout-divyanshusheth/team.jsonl var/bench/quality-holdout-divyanshusheth-nocrowd \\
        var/bench/quality-holdout-divyanshusheth-crowd

Teams as the crowd layer counts them (``training.crowd_layer.team_of``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import REPO, SHARED
from sciner.io.jsonl import read_jsonl, write_jsonl
from sciner.records import Sentence
from training.crowd_layer import team_of


@dataclass(frozen=True)
class TeamHoldout:
    """The gold split with one team taken out of it, and everything that team labelled."""

    train: list[Sentence]
    dev: list[Sentence]
    team: list[Sentence]


def hold_out_team(train: Sequence[Sentence], dev: Sequence[Sentence], team: str) -> TeamHoldout:
    """``train`` and ``dev`` without ``team``'s sentences, and the team's sentences of both (train first), in
    order. Raises ``ValueError`` for a team that labelled nothing. Pure."""
    mine = [s for s in [*train, *dev] if team_of(s) == team]
    if not mine:
        known = sorted({t for t in map(team_of, [*train, *dev]) if t})
        raise ValueError(f"no sentence labelled by {team!r}; teams: {', '.join(known)}")
    return TeamHoldout([s for s in train if team_of(s) != team], [s for s in dev if team_of(s) != team], mine)


def folder_name(team: str) -> str:
    """``holdout-<owner>`` in lower case: the default folder of a team's split. Pure."""
    return "holdout-" + team.split("/", 1)[0].lower()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--team", required=True, help="owner/repo of the team's gold source")
    ap.add_argument("--train", type=Path, default=SHARED / "sciner" / "train.jsonl")
    ap.add_argument("--dev", type=Path, default=SHARED / "sciner" / "dev.jsonl")
    ap.add_argument("--out", type=Path, default=None, help="folder (default var/data/holdout-<owner>)")
    args = ap.parse_args()
    try:
        split = hold_out_team(read_jsonl(args.train), read_jsonl(args.dev), args.team)
    except ValueError as exc:
        ap.error(str(exc))
    out = args.out or REPO / "var" / "data" / folder_name(args.team)
    out.mkdir(parents=True, exist_ok=True)
    for name, sentences in (("train", split.train), ("dev", split.dev), ("team", split.team)):
        write_jsonl(out / f"{name}.jsonl", sentences)
        print(f"{out / name}.jsonl: {len(sentences)} sentences of {len({s.doc_id for s in sentences})} documents")


if __name__ == "__main__":
    main()
