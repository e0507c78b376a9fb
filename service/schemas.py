"""Request/response models of the HTTP API and the request checks behind its 4xx answers.

Kept free of BentoML so the rules can be unit-tested without a server. The limits that answer
413/422 are checked here, in code, rather than as pydantic constraints: BentoML answers every
pydantic ``ValidationError`` with 400, and the API promises 422 for empty text and 413 for
oversized input. The JSON schema still documents the limits (``minLength``/``maxLength``/
``maxItems``) so clients and schemathesis see them.
"""

from __future__ import annotations

from datetime import datetime
from http import HTTPStatus
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from sciner.records import Entity
from sciner.settings import Settings, get_settings

NON_BLANK = r"\S"  # documented as a pattern: at least one non-whitespace character
_SETTINGS = get_settings()  # limits shown in the OpenAPI document (enforced from the live settings)


class RequestError(Exception):
    """A client error with its HTTP status; the API turns it into ``{"error": message}``."""

    def __init__(self, status: HTTPStatus, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class ExtractRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    text: str = Field(
        description="Raw text (one or many sentences). Empty or whitespace-only text is rejected (422); "
        "text over SCINER_MAX_CHARS characters is rejected (413).",
        json_schema_extra={"minLength": 1, "maxLength": _SETTINGS.max_chars, "pattern": NON_BLANK},
        examples=["We fine-tune BERT with a learning rate of 2e-5 and reach 84.6 accuracy on MNLI."],
    )


class ExtractBatchRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    texts: list[str] = Field(
        description="Texts to annotate, answered in order. At most SCINER_MAX_BATCH_TEXTS texts and "
        "SCINER_MAX_CHARS characters in all (413); no text may be empty (422).",
        json_schema_extra={
            "minItems": 1,
            "maxItems": _SETTINGS.max_batch_texts,
            "items": {"type": "string", "minLength": 1, "maxLength": _SETTINGS.max_chars, "pattern": NON_BLANK},
        },
        examples=[["BERT reaches 90.1 F1 on SQuAD .", "We train with a learning rate of 1e-4 ."]],
    )


class ExtractResponse(BaseModel):
    entities: list[Entity] = Field(description="Entities in character offsets: text[start:end] == entity.text.")
    model_version: str = Field(description="Version of the model that produced this answer.")
    windows: int = Field(ge=0, description="Model windows the text needed (long sentences need several).")


class TextResult(BaseModel):
    """One text's outcome inside an adaptive batch (internal route)."""

    entities: list[Entity] = Field(default_factory=list)
    windows: int = 0
    model_version: str = ""
    error: str | None = Field(None, description="Set when this text failed; its batch neighbours still succeed.")


class InferRequest(BaseModel):
    """Input of the internal batched route; each HTTP call's list is merged with others' lists."""

    texts: list[Annotated[str, Field(max_length=_SETTINGS.max_chars)]] = Field(max_length=_SETTINGS.max_batch_texts)


class ModelInfo(BaseModel):
    ready: bool = Field(description="Same answer as /readyz: a model is loaded, warm, and on the demanded device.")
    not_ready_reason: str | None = None
    name: str | None = Field(None, description="Registered model name (or the local folder's name).")
    version: str | None = None
    alias: str | None = Field(None, description="Registry alias the service follows (None for a local folder).")
    source: str | None = Field(None, description="'registry' or 'local'.")
    uri: str | None = Field(None, description="What SCINER_MODEL_URI resolved to.")
    labels: list[str] = Field(default_factory=list)
    gold_f1: float | None = Field(None, description="Strict micro-F1 of this version on gold data, if recorded.")
    dev_f1: float | None = Field(None, description="Micro-F1 on the model's dev split, if recorded.")
    loaded_at: datetime | None = Field(None, description="When this version finished loading and warming up.")
    provider: str | None = Field(None, description="Execution provider actually used (e.g. CPUExecutionProvider).")
    requested_providers: list[str] = Field(default_factory=list)
    adaptive_batching: bool = False
    swaps: int = Field(0, description="Successful model swaps since start (the first load not counted).")
    failed_loads: int = 0
    last_error: str | None = Field(None, description="Why the latest load attempt failed, if it did.")
    promotion: str | None = Field(None, description="Why this version may serve: the gate's or a human's record.")
    refused_version: str | None = Field(
        None, description="The version the alias points at but the service does not serve (not promoted by the gate)."
    )
    refused_reason: str | None = Field(None, description="Why refused_version is not served.")
    refusals: int = Field(0, description="Aliased versions refused since start (SCINER_SERVE_ONLY_GATED).")


def check_text(text: str, settings: Settings, where: str = "text") -> None:
    """Raise :class:`RequestError` unless ``text`` is a non-blank, encodable string within the limit."""
    if len(text) > settings.max_chars:
        raise RequestError(
            HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
            f"{where} has {len(text)} characters; the limit is {settings.max_chars} (SCINER_MAX_CHARS)",
        )
    if not text.strip():
        raise RequestError(HTTPStatus.UNPROCESSABLE_ENTITY, f"{where} is empty or whitespace only")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise RequestError(
            HTTPStatus.UNPROCESSABLE_ENTITY,
            f"{where} is not valid Unicode (unpaired surrogate at offset {exc.start})",
        ) from None


def check_texts(texts: list[str], settings: Settings) -> None:
    """Checks of an /extract_batch request: count, total size, then each text."""
    if not texts:
        raise RequestError(HTTPStatus.UNPROCESSABLE_ENTITY, "texts is empty: send at least one text")
    if len(texts) > settings.max_batch_texts:
        raise RequestError(
            HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
            f"{len(texts)} texts; the limit is {settings.max_batch_texts} (SCINER_MAX_BATCH_TEXTS)",
        )
    total = sum(len(t) for t in texts)
    if total > settings.max_chars:
        raise RequestError(
            HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
            f"texts hold {total} characters in all; the limit is {settings.max_chars} (SCINER_MAX_CHARS)",
        )
    for i, text in enumerate(texts):
        check_text(text, settings, where=f"texts[{i}]")
