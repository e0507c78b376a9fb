"""The training-time regularisers (FGM, R-Drop, mention swapping) change what is learnt, and the model folder
says which ran."""

from __future__ import annotations

import torch

from sciner.model_dir import read_metadata
from sciner.settings import Settings

REGULARISERS = {"adversarial_epsilon": 1.0, "rdrop_weight": 1.0, "mention_swap": 1.0}


def test_each_regulariser_changes_the_weights_and_is_recorded(seed_train, tmp_path):
    from transformers import AutoModelForTokenClassification

    from training.trainer import train_model

    plain = Settings(home=tmp_path, epochs=1, batch_size=8, intra_op_threads=1)
    runs = {"plain": plain} | {key: plain.model_copy(update={key: value}) for key, value in REGULARISERS.items()}
    folders = {
        name: train_model(seed_train[:24], None, tmp_path / name, settings, progress=False).model_dir
        for name, settings in runs.items()
    }

    def classifier(folder):
        return AutoModelForTokenClassification.from_pretrained(folder / "hf").classifier.weight.detach()

    for key, value in REGULARISERS.items():
        assert read_metadata(folders["plain"]).training[key] == 0.0
        assert read_metadata(folders[key]).training[key] == value
        # same seed, same batches: only the regulariser's gradients tell the two folders apart
        assert not torch.allclose(classifier(folders["plain"]), classifier(folders[key])), key
