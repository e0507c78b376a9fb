"""Crowd layer (Rodrigues & Pereira, 2018, "Deep learning from crowds"): SciNER's gold comes from 14 student
teams whose conventions differ (they agree with each other at about 0.58 F1). Training gives each team
its own learned label map between the model's logits and that team's labels: ``logits @ W_team +
b_team``, ``W`` starting as the identity and ``b`` at zero. The cross-entropy on a team's sentences is
taken through its map, so a team's habits (marking fewer entities, calling a task a method) are
absorbed by its map rather than by the shared model. The model that is exported, served, evaluated and
used for auto-annotation is the shared one, without any map: what the teams agree on.

A sentence's team is the repository its ``source`` names (``owner/repo@commit:path`` -> ``owner/repo``;
any other source up to its first ``:``). Auto-annotated sentences (``meta["auto"]``) and sentences
without a source get no map: they are the model's own labels, or a single annotator's. With fewer than
two teams there is nothing to tell apart and training runs without the layer (the seed set has one).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from sciner.records import Sentence

NO_TEAM = -1
MIN_CROWD_TEAMS = 2  # one team's map would only stand between the shared model and all of its labels


def team_of(sentence: Sentence) -> str | None:
    """The team that labelled ``sentence``, or ``None`` (auto-annotated, or no source)."""
    if sentence.meta.get("auto") or not sentence.source:
        return None
    return sentence.source.split("@", 1)[0].split(":", 1)[0] or None


def team_ids(sentences: Sequence[Sentence]) -> tuple[list[str], list[int]]:
    """(teams in sorted order, each sentence's index into them or ``NO_TEAM``)."""
    names = [team_of(s) for s in sentences]
    teams = sorted({n for n in names if n is not None})
    index = {t: i for i, t in enumerate(teams)}
    return teams, [NO_TEAM if n is None else index[n] for n in names]


def make_crowd_layer(n_teams: int, n_labels: int) -> object:
    """A ``torch.nn.Module``: ``layer(logits [B, T, L], teams [B]) -> logits`` with each row whose
    team is known mapped through that team's ``W`` and ``b``; rows with ``NO_TEAM`` pass
    through unchanged."""
    import torch

    class CrowdLayer(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.weight = torch.nn.Parameter(torch.eye(n_labels).repeat(n_teams, 1, 1))
            self.bias = torch.nn.Parameter(torch.zeros(n_teams, n_labels))

        def forward(self, logits: torch.Tensor, teams: torch.Tensor) -> torch.Tensor:
            known = teams >= 0
            if not bool(known.any()):
                return logits
            team = teams.clamp_min(0)
            mapped = torch.einsum("btl,blm->btm", logits, self.weight[team]) + self.bias[team][:, None, :]
            return torch.where(known[:, None, None], mapped, logits)

    return CrowdLayer()


def crowd_layer_summary(layer: object, teams: list[str], labels: list[str]) -> dict:
    """What the layer learned, for the model folder's metadata: per team, how far its map moved from
    the identity and its bias on each label (a positive ``O`` bias: the team marks fewer entities)."""
    weight = layer.weight.detach().cpu().numpy()  # type: ignore[attr-defined]
    bias = layer.bias.detach().cpu().numpy()  # type: ignore[attr-defined]
    eye = np.eye(len(labels))
    return {
        team: {
            "map_change": round(float(np.abs(weight[i] - eye).mean()), 6),
            "bias": {lab: round(float(b), 4) for lab, b in zip(labels, bias[i], strict=True)},
        }
        for i, team in enumerate(teams)
    }
