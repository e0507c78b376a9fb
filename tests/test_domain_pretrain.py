"""Domain-adaptive pre-training (`sciner adapt-encoder`): how text is packed, that the loss at the masked
positions alone is the masked-LM loss, and that the adapted folder is an encoder the trainer starts from."""

from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

from sciner.settings import Settings
from training.domain_pretrain import (
    LINEAGE_FILE,
    Chunk,
    adapt_encoder,
    head_only_parameters,
    masked_lm_head,
    masked_lm_loss,
    pack_sentences,
    warm_up_head,
)

CLS, SEP = 101, 102


def test_sentences_of_one_document_share_a_window_and_a_new_document_starts_one():
    chunks = pack_sentences([[1, 2], [3], [4, 5]], ["a", "a", "b"], max_tokens=8, cls_id=CLS, sep_id=SEP)
    assert [c.input_ids for c in chunks] == [[CLS, 1, 2, 3, SEP], [CLS, 4, 5, SEP]]


def test_a_full_window_closes_and_a_long_sentence_is_cut_into_windows_of_its_own():
    chunks = pack_sentences([[1, 2, 3], [4, 5], list(range(10, 19))], ["a"] * 3, max_tokens=6, cls_id=CLS, sep_id=SEP)
    assert [c.input_ids for c in chunks] == [
        [CLS, 1, 2, 3, SEP],
        [CLS, 4, 5, SEP],
        [CLS, 10, 11, 12, 13, SEP],
        [CLS, 14, 15, 16, 17, SEP],
        [CLS, 18, SEP],
    ]
    assert all(len(c.input_ids) <= 6 for c in chunks)


def test_sentences_without_a_document_are_never_packed_together():
    chunks = pack_sentences([[1], [2]], [None, None], max_tokens=16, cls_id=CLS, sep_id=SEP)
    assert len(chunks) == 2


def _tiny_masked_lm(kind: str):
    from transformers import BertConfig, BertForMaskedLM, MPNetConfig, MPNetForMaskedLM

    shape = {"vocab_size": 50, "hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2,
             "intermediate_size": 32}  # fmt: skip
    torch.manual_seed(0)
    if kind == "bert":
        return BertForMaskedLM(BertConfig(**shape))
    return MPNetForMaskedLM(MPNetConfig(**shape, pad_token_id=1))


@pytest.mark.parametrize(("kind", "head"), [("bert", "cls"), ("mpnet", "lm_head")])
def test_the_head_is_the_models_one_child_beside_its_encoder(kind, head):
    model = _tiny_masked_lm(kind)
    assert masked_lm_head(model) is getattr(model, head)


@pytest.mark.parametrize("kind", ["bert", "mpnet"])
def test_the_loss_at_the_masked_positions_alone_equals_the_models_own_masked_lm_loss(kind):
    model = _tiny_masked_lm(kind).eval()
    input_ids = torch.tensor([[0, 5, 6, 7, 8, 2], [0, 9, 10, 2, 1, 1]])
    attention = (input_ids != 1).long() if kind == "mpnet" else torch.ones_like(input_ids)
    labels = torch.full_like(input_ids, -100)
    labels[0, 2], labels[0, 4], labels[1, 1] = 6, 8, 9
    batch = {"input_ids": input_ids, "attention_mask": attention, "labels": labels}
    with torch.no_grad():
        ours = masked_lm_loss(model, masked_lm_head(model), batch)
        theirs = model(**batch).loss  # the vocabulary projection at every position, -100 ignored
    assert ours.item() == pytest.approx(theirs.item(), rel=1e-5)


@pytest.mark.parametrize("kind", ["bert", "mpnet"])
def test_the_heads_own_parameters_leave_out_the_projection_tied_to_the_word_embeddings(kind):
    model = _tiny_masked_lm(kind)
    head = masked_lm_head(model)
    own = {id(p) for p in head_only_parameters(model, head)}
    embeddings = model.base_model.embeddings.word_embeddings.weight
    assert id(embeddings) not in own
    assert own and own < {id(p) for p in head.parameters()}


def test_the_head_warm_up_moves_the_head_alone_and_gives_the_encoder_its_gradients_back():
    from tokenizers import Tokenizer, models
    from transformers import DataCollatorForLanguageModeling, PreTrainedTokenizerFast

    model = _tiny_masked_lm("bert")
    head = masked_lm_head(model)
    vocab = {"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3, "[MASK]": 4, **{f"w{i}": i for i in range(5, 50)}}
    tok = PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer(models.WordLevel(vocab, unk_token="[UNK]")),
        pad_token="[PAD]", unk_token="[UNK]", cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]",
    )  # fmt: skip
    collate = DataCollatorForLanguageModeling(tok, mlm=True, mlm_probability=0.5, return_tensors="pt")
    encoder_before = {n: p.detach().clone() for n, p in model.base_model.named_parameters()}
    head_before = [p.detach().clone() for p in head_only_parameters(model, head)]
    batches = [[Chunk([2, *range(5 + k, 25 + k), 3]) for k in range(4)]] * 5
    torch.manual_seed(0)
    losses = warm_up_head(model, head, collate, batches, learning_rate=1e-2, device="cpu")
    assert len(losses) == 5
    assert all(torch.equal(p, encoder_before[n]) for n, p in model.base_model.named_parameters())
    assert any(not torch.equal(p, q) for p, q in zip(head_only_parameters(model, head), head_before, strict=True))
    assert all(p.requires_grad for p in model.base_model.parameters())


def _small_settings(home, **overrides) -> Settings:
    """Masked-LM training small enough for a test: batches of 4 windows of 64 pieces, 4 held out, one thread."""
    small = {"adapt_batch_size": 4, "adapt_held_out_windows": 4, "train_max_tokens": 64, "intra_op_threads": 1}
    return Settings(home=home, **{**small, **overrides})


@pytest.fixture(scope="module")
def adapted(tmp_path_factory, seed_train):
    """The embedded MiniLM, a few masked-LM steps on the seed set's text."""
    settings = _small_settings(tmp_path_factory.mktemp("home"), adapt_max_steps=6, adapt_learning_rate=1e-3)
    out = tmp_path_factory.mktemp("encoders") / "adapted"
    texts = [(s.tokens, s.doc_id) for s in seed_train]
    info = adapt_encoder(texts, out, settings, {"train": "seed"}, progress=False)
    return settings, out, info


def test_the_adapted_folder_is_an_encoder_with_its_tokenizer_and_lineage(adapted):
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    settings, out, info = adapted
    assert sorted(p.name for p in out.parent.iterdir()) == ["adapted"], "no staging folder left behind"
    assert AutoConfig.from_pretrained(out).architectures == ["BertModel"]
    AutoTokenizer.from_pretrained(out)
    adapted_model, base = AutoModel.from_pretrained(out), AutoModel.from_pretrained(settings.base_model)
    changed = [
        name
        for (name, p), (_, q) in zip(adapted_model.named_parameters(), base.named_parameters(), strict=True)
        if not torch.equal(p, q)
    ]
    assert "encoder.layer.0.attention.self.query.weight" in changed
    lineage = json.loads((out / LINEAGE_FILE).read_text())
    assert lineage == {k: v for k, v in info.items() if k != "encoder_dir"}
    assert lineage["steps"] == 6 and lineage["base_model"] == settings.base_model
    assert lineage["case_markers"] == [1, 2, 3], "the text is read with the fine-tune's capital markers"


def test_masked_lm_training_lowers_the_held_out_loss(adapted):
    _, _, info = adapted
    loss = info["held_out_mlm_loss"]
    assert loss["after"] < loss["before"]


def test_the_trainer_starts_from_the_adapted_encoder(adapted, seed_train, tmp_path):
    from sciner.model_dir import read_metadata
    from training.trainer import train_model

    settings, out, _ = adapted
    tuned = settings.model_copy(update={"base_model": str(out), "epochs": 1, "batch_size": 8})
    result = train_model(seed_train[:16], None, tmp_path / "model", tuned, progress=False)
    assert read_metadata(result.model_dir).base_model == str(out)


def test_no_text_is_refused_and_nothing_is_written(tmp_path):
    with pytest.raises(ValueError, match="no text"):
        adapt_encoder([], tmp_path / "adapted", Settings(home=tmp_path), progress=False)
    assert not (tmp_path / "adapted").exists()


def test_the_command_refuses_a_missing_papers_file_with_a_message(tmp_path):
    from training.cli import app

    missing = tmp_path / "none.jsonl"
    result = CliRunner().invoke(app, ["adapt-encoder", "data/seed/train.jsonl", "--papers", str(missing)])
    assert result.exit_code == 2
    assert "none.jsonl" in result.output


def test_a_head_warm_up_is_recorded_with_the_held_out_loss_it_reached(tmp_path, seed_train):
    settings = _small_settings(tmp_path, adapt_max_steps=2, adapt_head_warmup_steps=3)
    info = adapt_encoder([(s.tokens, s.doc_id) for s in seed_train], tmp_path / "adapted", settings, progress=False)
    assert info["head_warmup_steps"] == 3 and info["head_learning_rate"] == settings.adapt_head_learning_rate
    loss = info["held_out_mlm_loss"]
    assert loss["after_head_warmup"] < loss["before"], "a random head learns from its first steps alone"
    assert info["steps"] == 2, "the warm-up does not count against the encoder's steps"


def test_the_command_takes_the_head_warm_up_and_step_count_as_options(tmp_path, sciner_env):
    from training.cli import app

    sciner_env(ADAPT_BATCH_SIZE=4, TRAIN_MAX_TOKENS=64, INTRA_OP_THREADS=1)
    out = tmp_path / "adapted"
    result = CliRunner().invoke(
        app, ["adapt-encoder", "data/seed/train.jsonl", "--steps", "1", "--head-steps", "2", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    lineage = json.loads((out / LINEAGE_FILE).read_text())
    assert lineage["steps"] == 1 and lineage["head_warmup_steps"] == 2
    assert "after_head_warmup" in lineage["held_out_mlm_loss"]
