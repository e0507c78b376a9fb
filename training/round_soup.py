"""A round's soup (SCINER_ROUND_SOUP): the candidate averages the weights the round trained with the champion's.

Both were fine-tuned from the same encoder on gold plus auto-annotated papers, so their average is one
model as fast as either and usually better than both (:mod:`training.soup`, measured in docs/quality.md).
Repeated over rounds, the champion becomes a running average of every promoted round, the newest weighing
half. Like a greedy soup, the average is kept only if it scores at least as well on gold dev as the
trained model alone (dev, never the gate's evaluation split), so a weak or stale champion cannot drag
down a better model. The champion's weights come from the registry (the run's ``checkpoint`` artifact,
:func:`sciner.registry.fetch_checkpoint`); when it has none, or the two cannot be averaged, the trained model
alone is the candidate and the outcome says why, for the version's description.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from sciner import registry
from sciner.model_dir import read_metadata, write_metadata
from sciner.settings import Settings
from training.aliases import registry_call
from training.round_common import short_model_name
from training.soup import SoupError, make_soup_of, read_member

log = logging.getLogger("sciner.rounds")


@dataclass(frozen=True, slots=True)
class RoundSoup:
    """What the round gates and registers (``model_dir``), and in words how it was made."""

    model_dir: Path
    souped: bool
    note: str
    champion: str  # "champion v<N>", for a later note


def champion_checkpoint(settings: Settings, champion_version: str) -> Path | None:
    """The champion's PyTorch checkpoint from the registry (``None``: registered without one, or no soup wanted)."""
    if not settings.round_soup:
        return None
    return registry_call(
        f"downloading champion v{champion_version}'s checkpoint",
        registry.fetch_checkpoint,
        settings,
        champion_version,
        settings.home / "cache" / "registry",
    )


def soup_with_champion(
    settings: Settings,
    trained_dir: Path,
    champion_dir: Path,
    champion_version: str,
    checkpoint: Path | None,
    out: Path,
    round_id: int,
) -> RoundSoup:
    """Average ``trained_dir`` (the lead: its input conventions and lineage) with the champion (its model folder
    and ``checkpoint``) into ``out``; or say why the trained model is the candidate alone."""
    champion = f"champion v{champion_version}"
    if not settings.round_soup:
        return RoundSoup(trained_dir, False, "trained alone (SCINER_ROUND_SOUP=false)", champion)
    if checkpoint is None:
        note = f"trained alone: {champion} was registered without its checkpoint, so it cannot be averaged"
        log.info("round=%d %s", round_id, note)
        return RoundSoup(trained_dir, False, note, champion)
    try:
        members = [
            read_member(trained_dir, name=f"round {round_id} model"),
            read_member(champion_dir, checkpoint, name=champion),
        ]
        ours, theirs = (short_model_name(m.meta.base_model) for m in members)
        if ours != theirs:  # a soup averages fine-tunings of one encoder (wherever its folder lay)
            raise SoupError(f"{champion} was fine-tuned from {theirs}, this round from {ours}")
        make_soup_of(members, out)
    except (SoupError, FileNotFoundError) as exc:
        note = f"trained alone: it cannot be averaged with {champion} ({exc})"
        log.warning("round=%d %s", round_id, note)
        return RoundSoup(trained_dir, False, note, champion)
    trained, soup = read_metadata(trained_dir), read_metadata(out)
    soup.data = {**trained.data, **soup.data}  # what this round trained on, then each member's data
    soup.training = {**trained.training, **soup.training}
    write_metadata(out, soup)
    note = f"weights averaged with {champion}'s"
    log.info("round=%d candidate: %s", round_id, note)
    return RoundSoup(out, True, note, champion)


def dev_f1(summary: dict) -> float | None:
    """The gold dev micro-F1 :func:`training.pipeline.export_and_score` recorded (``None`` without dev)."""
    return summary.get("dev", {}).get("micro_f1")


def keep_if_not_worse_on_dev(
    soup: RoundSoup, trained_dir: Path, soup_f1: float | None, alone_f1: float | None
) -> RoundSoup:
    """The greedy soup's rule (Wortsman et al. 2022): the average replaces the trained model only if it scores at
    least as well on held-out data, here gold dev (which the gate's evaluation split never is). Without dev
    scores the soup stays. Pure."""
    if not soup.souped or soup_f1 is None or alone_f1 is None or soup_f1 >= alone_f1:
        return soup
    note = (
        f"trained alone: its average with {soup.champion} scored lower on gold dev "
        f"(micro-F1 {soup_f1:.3f} against {alone_f1:.3f})"
    )
    return RoundSoup(trained_dir, False, note, soup.champion)
