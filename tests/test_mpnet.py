"""MPNet (the teacher's architecture) end to end on a tiny randomly initialised model, so CI needs no
weights: train -> ONNX export (fp32 + int8) -> predictor -> a real service answers.

MPNet differs from BERT where sciner could silently go wrong: ``<s>``/``</s>`` instead of
``[CLS]``/``[SEP]``, pad id 1 (not 0), an unknown-piece id that is not BERT's, no ``token_type_ids`` and
positions offset by the padding index.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import numpy as np
import pytest

from sciner.model_dir import read_metadata
from sciner.predictor import Predictor
from sciner.settings import Settings
from service.process import quiet_env, ready_service

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

SPECIALS = ["<s>", "<pad>", "</s>", "<unk>", "[UNK]"]  # ids 0-3 as in MPNet, whose unknown piece is [UNK]


def write_tiny_mpnet(folder: Path, words: list[str]) -> Path:
    """A 2-layer, 32-wide MPNet with a WordPiece vocabulary of the given words plus single characters."""
    from transformers import MPNetConfig, MPNetModel, MPNetTokenizerFast

    chars = sorted({c for w in words for c in w})
    vocab = [*SPECIALS, *sorted(set(words)), *chars, *(f"##{c}" for c in chars), "<mask>"]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.txt").write_text("\n".join(dict.fromkeys(vocab)) + "\n", encoding="utf-8")
    tokenizer = MPNetTokenizerFast(vocab_file=str(folder / "vocab.txt"), do_lower_case=True)
    config = MPNetConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=514,
        pad_token_id=tokenizer.pad_token_id,
    )
    MPNetModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def mpnet_model_dir(tmp_path_factory, seed_train, seed_dev) -> Path:
    from training.pipeline import train_and_export

    words = [w.lower() for s in seed_train for w in s.tokens if w.isalpha()]
    base = write_tiny_mpnet(tmp_path_factory.mktemp("mpnet-base"), words)
    settings = Settings(
        home=tmp_path_factory.mktemp("mpnet-home"),
        base_model=str(base),
        epochs=2,
        learning_rate=1e-3,
        batch_size=8,
        intra_op_threads=1,
    )
    out = tmp_path_factory.mktemp("models") / "mpnet"
    train_and_export(seed_train, seed_dev, out, settings, progress=False)
    return out


def test_the_model_folder_records_mpnet_special_tokens(mpnet_model_dir):
    meta = read_metadata(mpnet_model_dir)
    config = json.loads((mpnet_model_dir / "hf" / "config.json").read_text())
    assert config["model_type"] == "mpnet"
    assert (meta.cls_id, meta.pad_id, meta.sep_id, meta.unk_id) == (0, 1, 2, SPECIALS.index("[UNK]"))


def test_both_onnx_variants_take_no_token_type_ids_and_agree_with_pytorch(mpnet_model_dir, seed_dev):
    import onnx

    sentences = [s.tokens for s in seed_dev[:8]]
    torch_pred = Predictor.from_model_dir(mpnet_model_dir, Settings(onnx_variant="fp32"), variant="missing")
    reference = torch_pred.word_logits(sentences)
    for variant in ("fp32", "int8"):
        graph = onnx.load(str(mpnet_model_dir / "onnx" / variant / "model.onnx")).graph
        assert {i.name for i in graph.input} == {"input_ids", "attention_mask"}
        got = Predictor.from_model_dir(mpnet_model_dir, Settings(), variant).word_logits(sentences)
        diff = np.concatenate([np.abs(a.logits - b.logits).ravel() for a, b in zip(reference, got, strict=True)])
        if variant == "fp32":
            assert diff.max() < 1e-3
        else:  # int8 error depends on the CPU's kernels (AVX2 without VNNI: one logit off by 0.13, mean 0.003)
            pairs = zip(reference, got, strict=True)
            same = np.concatenate([a.logits.argmax(-1) == b.logits.argmax(-1) for a, b in pairs])
            assert diff.mean() < 0.02 and same.mean() >= 0.95, (diff.mean(), same.mean())


def test_the_int8_recipe_finds_one_feed_forward_output_per_mpnet_layer(mpnet_model_dir):
    import onnx

    from training.int8_recipe import ffn_output_nodes

    nodes = ffn_output_nodes(onnx.load(str(mpnet_model_dir / "onnx" / "fp32" / "model.onnx")))
    assert len(nodes) == 2 and all("output/dense" in name for name in nodes)  # the tiny MPNet has 2 layers


def test_the_mpnet_int8_model_has_calibrated_activation_scales(mpnet_model_dir):
    import onnx

    from sciner.model_dir import read_metadata

    ops = [n.op_type for n in onnx.load(str(mpnet_model_dir / "onnx" / "int8" / "model.onnx")).graph.node]
    assert "DynamicQuantizeLinear" not in ops and "MatMulIntegerToFloat" in ops
    assert read_metadata(mpnet_model_dir).extra["int8"]["activation_scales"] == "calibrated"


def test_padding_with_id_1_does_not_change_a_sentences_logits(mpnet_model_dir, seed_dev):
    """A short sentence batched with a long one (padded with <pad>=1) gets the logits it gets alone."""
    predictor = Predictor.from_model_dir(mpnet_model_dir, Settings(), "fp32")
    short, long = seed_dev[0].tokens[:5], [t for s in seed_dev[:3] for t in s.tokens]
    alone = predictor.word_logits([short])[0].logits
    batched = predictor.word_logits([short, long])[0].logits
    assert np.abs(alone - batched).max() < 1e-3


def test_long_mpnet_sentences_are_windowed(mpnet_model_dir):
    predictor = Predictor.from_model_dir(mpnet_model_dir, Settings(window_tokens=32, window_stride=8))
    words = ("the model reaches high accuracy on the benchmark " * 30).split()
    (pred,) = predictor.predict_sentences([words])
    assert pred.windows > 1 and len(pred.tags) == len(words)


def test_the_service_answers_with_an_mpnet_model(mpnet_model_dir, tmp_path):
    env = quiet_env(tmp_path, SCINER_MODEL_URI=str(mpnet_model_dir), SCINER_INTRA_OP_THREADS="1")
    text = "We fine-tune BERT on SQuAD with a learning rate of 3e-5 ."
    with ready_service(env, tmp_path / "serve.log") as srv:
        response = httpx.post(f"{srv.url}/extract", json={"text": text}, timeout=60)
    assert response.status_code == 200, response.text
    for entity in response.json()["entities"]:
        assert text[entity["start"] : entity["end"]] == entity["text"]
