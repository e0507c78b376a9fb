"""Training on every word piece of a word, not its first only (``SCINER_LABEL_ALL_PIECES``)."""

from __future__ import annotations

import pytest

from sciner.encoding import load_tokenizer
from sciner.labels import IGNORE_INDEX, continuation_labels
from sciner.model_dir import read_metadata
from sciner.records import Sentence
from training.features import build_examples


def test_every_piece_of_an_entity_word_is_labelled_and_the_first_pieces_keep_the_words_labels(tiny_model_dir):
    meta = read_metadata(tiny_model_dir)
    tok = load_tokenizer(str(tiny_model_dir / "tokenizer.json"))
    label2id = {lab: i for i, lab in enumerate(meta.labels)}
    sentence = Sentence("d#s0", ["Transformerization", "beats", "LSTMs", "."], ["B-MethodName", "O", None, "O"], "d")
    args = (tok, label2id, meta.cls_id, meta.sep_id, 128, 32, meta.unk_id)

    (first,) = build_examples([sentence], *args)
    (every,) = build_examples([sentence], *args, continuation=continuation_labels(meta.labels))

    assert every.input_ids == first.input_ids
    first_pieces = [k for k, lab in enumerate(first.labels) if lab != IGNORE_INDEX]
    assert [every.labels[k] for k in first_pieces] == [first.labels[k] for k in first_pieces]
    split = first_pieces[1] - first_pieces[0] - 1  # "Transformerization" is more than one piece
    assert split >= 1
    assert every.labels[first_pieces[0] + 1 : first_pieces[1]] == [label2id["I-MethodName"]] * split
    unknown = every.input_ids.index(tok.encode("LSTMs", add_special_tokens=False).ids[0], first_pieces[1] + 1)
    assert every.labels[unknown] == IGNORE_INDEX, "a word of unknown label stays unlabelled on all its pieces"
    assert every.labels[0] == every.labels[-1] == IGNORE_INDEX


@pytest.mark.slow
def test_a_model_trained_on_every_piece_records_it_and_still_reads_first_pieces(tmp_path, seed_train, seed_dev):
    from sciner.predictor import Predictor
    from sciner.settings import Settings
    from training.trainer import train_model

    settings = Settings(home=tmp_path, epochs=1, batch_size=8, label_all_pieces=True, intra_op_threads=1)
    out = train_model(seed_train, None, tmp_path / "model", settings, progress=False).model_dir

    assert read_metadata(out).training["label_all_pieces"] is True
    predictions = Predictor.from_model_dir(out, settings).predict_records(seed_dev[:5])
    assert [len(p.tags) for p in predictions] == [len(s.tokens) for s in seed_dev[:5]], "one tag per word"
