"""The weight average while training: its decay schedule, its arithmetic, and that it is what a model folder holds."""

from __future__ import annotations

import pytest
import torch

from sciner.model_dir import read_metadata
from sciner.settings import Settings
from training.weight_average import ema_decay_at, make_weight_average


def test_the_decay_warms_up_from_a_tenth_and_then_holds_at_the_setting():
    assert ema_decay_at(0.998, 0) == pytest.approx(0.1)
    assert ema_decay_at(0.998, 90) == pytest.approx(91 / 100)
    assert ema_decay_at(0.998, 10_000) == 0.998
    assert [ema_decay_at(0.9, n) for n in (100, 1000)] == [0.9, 0.9]


def test_the_average_of_a_layer_equals_a_hand_computation():
    layer = torch.nn.Linear(1, 1, bias=False)
    average = make_weight_average(layer, decay=0.5)
    expected = None
    for step, value in enumerate([4.0, 2.0, 8.0]):
        with torch.no_grad():
            layer.weight.fill_(value)
        average.update_parameters(layer)
        # the first update copies; later ones keep ema_decay_at(0.5, n) of the average, n updates already in it
        keep = ema_decay_at(0.5, step)
        expected = value if expected is None else keep * expected + (1 - keep) * value
    assert expected == pytest.approx(3 / 12 * (2 / 11 * 4.0 + 9 / 11 * 2.0) + 9 / 12 * 8.0)
    assert average.module.weight.item() == pytest.approx(expected)
    assert layer.weight.item() == 8.0, "the model itself is untouched"


def test_a_model_trained_with_the_average_keeps_the_average_and_says_so(seed_train, tmp_path):
    from transformers import AutoModelForTokenClassification

    from training.trainer import train_model

    plain = Settings(home=tmp_path, epochs=1, batch_size=8, intra_op_threads=1)
    averaged = plain.model_copy(update={"weight_ema": 0.9})
    folders = {}
    for name, settings in (("plain", plain), ("averaged", averaged)):
        result = train_model(seed_train[:24], None, tmp_path / name, settings, progress=False)
        folders[name] = result.model_dir
    assert read_metadata(folders["plain"]).training["weight_ema"] == 0.0
    assert read_metadata(folders["averaged"]).training["weight_ema"] == 0.9

    def classifier(folder):
        model = AutoModelForTokenClassification.from_pretrained(folder / "hf")
        return model.classifier.weight.detach()

    # same seed, same batches: only the average tells the two folders apart
    assert not torch.allclose(classifier(folders["plain"]), classifier(folders["averaged"]))


def test_the_decay_must_be_below_one():
    with pytest.raises(ValueError):
        Settings(weight_ema=1.0)
