"""A round's candidate averages the model it trained with the champion (SCINER_ROUND_SOUP); when it cannot,
the trained model alone is the candidate and the round says why. (The registry edge and a whole round:
tests/test_loop_e2e.py.)"""

from __future__ import annotations

import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from sciner.model_dir import HF_DIR, read_metadata, sha256_file, write_metadata
from training.round_soup import RoundSoup, keep_if_not_worse_on_dev, soup_with_champion

WEIGHTS = Path(HF_DIR) / "model.safetensors"


def _champion_as_registered(tiny_model_dir: Path, tmp_path: Path, shift: float = 0.25) -> tuple[Path, Path]:
    """A champion as a round sees it: the served folder from the registry (no hf/) and, apart, its checkpoint."""
    folder = shutil.copytree(tiny_model_dir, tmp_path / "champion", ignore=shutil.ignore_patterns(HF_DIR))
    checkpoint = shutil.copytree(tiny_model_dir / HF_DIR, tmp_path / "champion-checkpoint")
    state = load_file(checkpoint / "model.safetensors")
    save_file(
        {k: v + shift if v.is_floating_point() else v for k, v in state.items()}, checkpoint / "model.safetensors"
    )
    return folder, checkpoint


def test_the_candidate_averages_the_trained_model_with_the_champions_checkpoint(
    tiny_model_dir, tiny_settings, tmp_path
):
    champion, checkpoint = _champion_as_registered(tiny_model_dir, tmp_path)
    soup = soup_with_champion(tiny_settings, tiny_model_dir, champion, "3", checkpoint, tmp_path / "candidate", 7)

    assert soup.souped and soup.model_dir == tmp_path / "candidate"
    assert soup.note == "weights averaged with champion v3's"
    trained, theirs, ours = (
        load_file(p) for p in (tiny_model_dir / WEIGHTS, checkpoint / "model.safetensors", soup.model_dir / WEIGHTS)
    )
    name = "classifier.weight"
    assert torch.allclose(ours[name], (trained[name] + theirs[name]) / 2)
    meta, trained_meta = read_metadata(soup.model_dir), read_metadata(tiny_model_dir)
    members = meta.training["soup"]["members"]
    assert [m["folder"] for m in members] == ["round 7 model", "champion v3"]
    assert members[1]["weights_sha256"] == sha256_file(checkpoint / "model.safetensors")
    # the round's lineage reads what the candidate was trained on at the top, as for an unsouped candidate
    assert meta.data["train"] == trained_meta.data["train"]
    assert set(meta.data["soup_members"]) == {"round 7 model", "champion v3"}
    assert set(trained_meta.training) <= set(meta.training)


def test_without_the_champions_checkpoint_the_trained_model_is_the_candidate(tiny_model_dir, tiny_settings, tmp_path):
    champion, _ = _champion_as_registered(tiny_model_dir, tmp_path)
    soup = soup_with_champion(tiny_settings, tiny_model_dir, champion, "3", None, tmp_path / "candidate", 7)
    assert (soup.souped, soup.model_dir) == (False, tiny_model_dir)
    assert soup.note == "trained alone: champion v3 was registered without its checkpoint, so it cannot be averaged"
    assert not (tmp_path / "candidate").exists()


def test_a_champion_with_other_labels_is_not_averaged_and_the_note_says_why(tiny_model_dir, tiny_settings, tmp_path):
    champion, checkpoint = _champion_as_registered(tiny_model_dir, tmp_path)
    meta = read_metadata(champion)
    meta.labels = [*meta.labels, "B-Extra"]
    write_metadata(champion, meta)
    soup = soup_with_champion(tiny_settings, tiny_model_dir, champion, "3", checkpoint, tmp_path / "candidate", 7)
    assert (soup.souped, soup.model_dir) == (False, tiny_model_dir)
    assert soup.note.startswith("trained alone: it cannot be averaged with champion v3 (champion v3 has labels")
    assert not (tmp_path / "candidate").exists() and not list(tmp_path.glob(".candidate*"))


def test_switched_off_the_round_trains_alone(tiny_model_dir, tiny_settings, tmp_path):
    champion, checkpoint = _champion_as_registered(tiny_model_dir, tmp_path)
    off = tiny_settings.model_copy(update={"round_soup": False})
    soup = soup_with_champion(off, tiny_model_dir, champion, "3", checkpoint, tmp_path / "candidate", 7)
    assert (soup.souped, soup.model_dir, soup.note) == (
        False,
        tiny_model_dir,
        "trained alone (SCINER_ROUND_SOUP=false)",
    )


def test_a_champion_fine_tuned_from_another_encoder_is_not_averaged(tiny_model_dir, tiny_settings, tmp_path):
    champion, checkpoint = _champion_as_registered(tiny_model_dir, tmp_path)
    meta = read_metadata(champion)
    meta.base_model = "var/encoders/scierc-pretrained"
    write_metadata(champion, meta)
    soup = soup_with_champion(tiny_settings, tiny_model_dir, champion, "3", checkpoint, tmp_path / "candidate", 7)
    assert (soup.souped, soup.model_dir) == (False, tiny_model_dir)
    assert "champion v3 was fine-tuned from var/encoders/scierc-pretrained, this round from " in soup.note


def test_the_average_stays_only_if_it_scores_at_least_as_well_on_gold_dev():
    soup = RoundSoup(Path("candidate"), True, "weights averaged with champion v3's", "champion v3")
    trained = Path("trained")
    assert keep_if_not_worse_on_dev(soup, trained, 0.54, 0.53) is soup
    assert keep_if_not_worse_on_dev(soup, trained, 0.53, 0.53) is soup  # a tie keeps the average
    assert keep_if_not_worse_on_dev(soup, trained, None, 0.53) is soup  # no dev scores: nothing to choose on
    worse = keep_if_not_worse_on_dev(soup, trained, 0.50, 0.53)
    assert (worse.model_dir, worse.souped) == (trained, False)
    assert worse.note == (
        "trained alone: its average with champion v3 scored lower on gold dev (micro-F1 0.500 against 0.530)"
    )
    alone = RoundSoup(trained, False, "trained alone (SCINER_ROUND_SOUP=false)", "champion v3")
    assert keep_if_not_worse_on_dev(alone, trained, 0.60, 0.53) is alone
