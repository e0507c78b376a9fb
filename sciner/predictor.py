"""The single prediction path, used by the service and by auto-annotation alike.

Texts in, character-offset entities out; or pre-tokenized sentences in, per-word tags and
probabilities out. A model trained with document context reads a text's (or a document's)
sentences together. Long inputs go through overlapping windows; windows from all inputs are
sorted by length and batched under a token budget.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

from sciner.backends import CUDA, Backend, OnnxBackend, TorchBackend
from sciner.decoding import WordSpan, allowed_transitions, softmax, spans_to_entities, tags_to_spans, viterbi
from sciner.encoding import (
    document_runs,
    join_runs,
    load_tokenizer,
    make_windows,
    owner_window,
    pad_batch,
    split_run,
    token_budget_batches,
    word_pieces,
)
from sciner.labels import OUTSIDE
from sciner.model_dir import HF_DIR, TOKENIZER_FILE, ModelMetadata, onnx_path, read_metadata
from sciner.pretokenize import split_sentences
from sciner.propagation import PropagationRule, propagate_names, propagate_text
from sciner.records import Entity, Sentence, Token, documents_of
from sciner.settings import Settings, get_settings

log = logging.getLogger(__name__)


@dataclass(slots=True)
class SentencePrediction:
    tags: list[str]
    probs: np.ndarray  # [n_words, n_labels], from the window where each word is most central
    spans: list[WordSpan]
    windows: int

    @property
    def word_scores(self) -> np.ndarray:
        """Probability of the chosen tag for each word."""
        return self.probs.max(axis=-1) if len(self.probs) else np.zeros(0)


@dataclass(slots=True)
class WordLogits:
    logits: np.ndarray  # [n_words, n_labels], raw model outputs
    windows: int


@dataclass(slots=True)
class TextPrediction:
    entities: list[Entity]
    windows: int
    sentences: int


class Predictor:
    def __init__(self, backend: Backend, tokenizer: Tokenizer, meta: ModelMetadata, settings: Settings) -> None:
        self.backend = backend
        self.meta = meta
        self.labels = meta.labels
        self.settings = settings
        self.tokenizer = tokenizer
        self._unk = meta.unk_id if meta.unk_id is not None else self.tokenizer.token_to_id("[UNK]")
        self.window_tokens = min(settings.window_tokens, meta.max_positions)
        self.overlap = min(settings.window_stride, self.window_tokens // 2)
        self._start_ok, self._trans_ok = allowed_transitions(self.labels)
        self._o_index = self.labels.index(OUTSIDE)
        self.o_bias = meta.o_bias
        self.propagation: PropagationRule | None = (
            PropagationRule.of(
                settings.propagation_types,
                settings.propagation_min_mentions,
                settings.propagation_max_words,
                settings.propagation_min_chars,
            )
            if settings.name_propagation
            else None
        )

    @classmethod
    def from_model_dir(
        cls, model_dir: str | Path, settings: Settings | None = None, variant: str | None = None
    ) -> Predictor:
        """ONNX Runtime on the requested variant; PyTorch only when no ONNX file exists."""
        settings = settings or get_settings()
        model_dir = Path(model_dir)
        meta = read_metadata(model_dir)
        path = onnx_path(model_dir, variant or settings.onnx_variant)
        if path.is_file():
            backend: Backend = OnnxBackend(path, settings.device, settings.intra_op_threads, settings.ort_spinning)
        else:
            log.warning("no ONNX model at %s, falling back to PyTorch", path)
            backend = TorchBackend.from_hf_dir(model_dir / HF_DIR, settings.device)
        return cls(backend, load_tokenizer(str(model_dir / TOKENIZER_FILE)), meta, settings)

    @property
    def uses_gpu(self) -> bool:
        return self.backend.provider in (CUDA, "torch:cuda")

    # --- pre-tokenized sentences ------------------------------------------------------------
    def predict_sentences(
        self, sentences: list[list[str]], documents: Sequence[str | None] | None = None, propagate: bool = True
    ) -> list[SentencePrediction]:
        """Tags per word of each sentence. ``documents`` (one key per sentence) lets a model trained with
        document context read consecutive sentences of a document together, as it was trained, and names
        propagate within a document (:meth:`decode_all`)."""
        return self.decode_all(self.word_logits(sentences, documents), sentences, documents, propagate=propagate)

    def word_logits(
        self, sentences: list[list[str]], documents: Sequence[str | None] | None = None
    ) -> list[WordLogits]:
        """Raw logits per word, each from the window where the word is most central (no decoding yet:
        calibration re-decodes the same logits under several biases). A model trained with document
        context reads each run of consecutive sentences with one ``documents`` key as one word
        sequence; any other model, or no ``documents``, reads every sentence on its own. With document
        context a run's windows are counted on its first sentence, so sums over a text stay right."""
        if documents is None or not self.meta.reads_documents:
            return self._sentence_logits(sentences)
        if len(documents) != len(sentences):
            raise ValueError(f"{len(documents)} document keys for {len(sentences)} sentences")
        runs = document_runs(documents)
        joined = self._sentence_logits(join_runs(sentences, runs))
        results: list[WordLogits] = []
        for run, run_logits in zip(runs, joined, strict=True):
            parts = split_run(run_logits.logits, [len(sentences[i]) for i in run])
            results += [WordLogits(np.asarray(p), run_logits.windows if k == 0 else 0) for k, p in enumerate(parts)]
        return results

    # --- gold or annotated records ------------------------------------------------------------
    def record_logits(self, records: Sequence[Sentence]) -> list[WordLogits]:
        """:meth:`word_logits` of ``Sentence`` records, each read with its document (``doc_id``)."""
        return self.word_logits([r.tokens for r in records], documents_of(records))

    def predict_records(self, records: Sequence[Sentence]) -> list[SentencePrediction]:
        """:meth:`predict_sentences` of ``Sentence`` records, each read with its document (``doc_id``)."""
        return self.decode_records(self.record_logits(records), records)

    def decode_records(
        self,
        logits: Sequence[WordLogits],
        records: Sequence[Sentence],
        o_bias: float | None = None,
        propagate: bool = True,
    ) -> list[SentencePrediction]:
        """:meth:`decode_all` of the logits of ``records``, each sentence with its document (``doc_id``)."""
        return self.decode_all(logits, [r.tokens for r in records], documents_of(records), o_bias, propagate)

    def _sentence_logits(self, sentences: list[list[str]]) -> list[WordLogits]:
        empty = WordLogits(np.zeros((0, len(self.labels))), 0)
        results: list[WordLogits] = [empty] * len(sentences)
        todo = [i for i, words in enumerate(sentences) if words]
        if not todo:
            return results
        pieces = word_pieces(self.tokenizer, [sentences[i] for i in todo], self._unk, self.meta.case_markers)
        windows = make_windows(pieces, self.meta.cls_id, self.meta.sep_id, self.window_tokens, self.overlap)
        window_logits = self._run(windows)
        by_sentence: dict[int, list[int]] = {}
        for k, win in enumerate(windows):
            by_sentence.setdefault(win.sentence, []).append(k)
        for local, idx in enumerate(todo):
            ks = by_sentence[local]
            wins = [windows[k] for k in ks]
            owners = owner_window(wins, len(sentences[idx]))
            rows = []
            for w, o in enumerate(owners):
                win = wins[o]
                rows.append(window_logits[ks[o]][win.first_piece[w - win.word_start]])
            results[idx] = WordLogits(np.stack(rows).astype(np.float64), len(ks))
        return results

    def decode(self, word_logits: WordLogits, o_bias: float | None = None) -> SentencePrediction:
        """Per-word logits -> probabilities (the ``O`` logit lowered by the model's calibrated bias) ->
        valid IOB2 tags (Viterbi) -> spans. The one decoding step of the service, evaluation and
        auto-annotation."""
        logits = word_logits.logits
        if len(logits) == 0:
            return SentencePrediction([], np.zeros((0, len(self.labels))), [], word_logits.windows)
        bias = self.o_bias if o_bias is None else o_bias
        if bias:
            logits = logits.copy()
            logits[:, self._o_index] -= bias
        probs = softmax(logits)
        path = viterbi(probs, self._start_ok, self._trans_ok)
        tags = [self.labels[j] for j in path]
        scores = probs[np.arange(len(path)), path]
        return SentencePrediction(tags, probs, tags_to_spans(tags, scores), word_logits.windows)

    def decode_all(
        self,
        logits: Sequence[WordLogits],
        sentences: Sequence[Sequence[str]],
        documents: Sequence[str | None] | None,
        o_bias: float | None = None,
        propagate: bool = True,
    ) -> list[SentencePrediction]:
        """:meth:`decode` each sentence, then (unless ``propagate`` is false or the settings turn it off) copy
        the names the model labels in a document to their unlabelled mentions there
        (:mod:`sciner.propagation`; ``documents`` as in :meth:`word_logits`, ``None``: each sentence alone).
        The decoding of the service, evaluation, calibration and auto-annotation."""
        preds = [self.decode(w, o_bias) for w in logits]
        if self.propagation is None or not propagate:
            return preds
        tags = [p.tags for p in preds]
        changed = propagate_names(sentences, tags, [p.spans for p in preds], documents, self.propagation)
        return [SentencePrediction(t, p.probs, s, p.windows) for p, (t, s) in zip(preds, changed, strict=True)]

    def _run(self, windows: list) -> list[np.ndarray]:
        """Logits per window, computed in length-sorted, token-budgeted batches."""
        out: list[np.ndarray | None] = [None] * len(windows)
        lengths = [len(w.input_ids) for w in windows]
        budget, most = self.settings.batch_token_budget, self.settings.batch_max_windows
        for batch in token_budget_batches(lengths, budget, most):
            ids, mask = pad_batch([windows[k].input_ids for k in batch], self.meta.pad_id)
            logits = self.backend.logits(ids, mask)
            for row, k in enumerate(batch):
                out[k] = logits[row, : lengths[k]]
        return out  # type: ignore[return-value]

    # --- raw text ----------------------------------------------------------------------------
    def predict_texts(self, texts: list[str], propagate: bool = True) -> list[TextPrediction]:
        """Character-offset entities of each text, each text one document (names propagate within it unless
        ``propagate`` is false: the long lane predicts a text's pieces apart, then :meth:`propagate_text`)."""
        split: list[list[list[Token]]] = [split_sentences(t) for t in texts]
        flat = [[tok.text for tok in sent] for sents in split for sent in sents]
        documents = [str(i) for i, sents in enumerate(split) for _ in sents]
        preds = self.predict_sentences(flat, documents, propagate)
        results: list[TextPrediction] = []
        k = 0
        for text, sents in zip(texts, split, strict=True):
            entities: list[Entity] = []
            windows = 0
            for sent in sents:
                pred = preds[k]
                k += 1
                windows += pred.windows
                entities.extend(spans_to_entities(text, sent, pred.spans))
            results.append(TextPrediction(entities, windows, len(sents)))
        return results

    def propagate_text(self, text: str, entities: list[Entity]) -> list[Entity]:
        """Name propagation over a whole text whose pieces were predicted with ``propagate=False``: the
        entities ``predict_texts`` gives for the text at once (:func:`sciner.propagation.propagate_text`)."""
        return entities if self.propagation is None else propagate_text(text, entities, self.propagation)

    def warmup(self) -> None:
        """Run the model once on short and long inputs so first requests pay no set-up cost."""
        self.predict_texts(["BERT reaches 90.1 F1 on SQuAD .", "warm up " * 200])
