"""One convention for bad request bodies (pure logic, used by the ASGI guard before BentoML).

* a body that is not JSON (empty, malformed, not UTF-8) → **400**;
* JSON that does not fit the route's model (wrong type, missing field, a string that is not
  valid Unicode such as a lone surrogate escape) → **422**, naming each field and its problem:
  ``{"error": "invalid request: text: Input should be a valid string",
  "detail": [{"field": "text", "problem": "Input should be a valid string"}]}``.

The body is checked with the very parser BentoML then uses (pydantic's ``model_validate_json``),
so whatever passes here also passes there and BentoML never logs a validation traceback (whose
pydantic message would quote the input). Messages never contain request content.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError

MAX_LISTED = 10  # field problems listed in one answer


@dataclass(frozen=True)
class Rejection:
    status: int
    error: str
    detail: list[dict[str, str]] = field(default_factory=list)

    def body(self) -> dict[str, Any]:
        return {"error": self.error, "detail": self.detail} if self.detail else {"error": self.error}


def field_name(loc: tuple[int | str, ...]) -> str:
    """``("texts", 1)`` → ``"texts[1]"``; ``("papers", 0, "title")`` → ``"papers[0].title"``."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "body"


def _unencodable(obj: Any, loc: tuple[int | str, ...] = ()) -> Iterator[tuple[tuple[int | str, ...], int]]:
    """Locations of strings that are not valid Unicode (lone surrogates), with the offset."""
    if isinstance(obj, str):
        try:
            obj.encode("utf-8")
        except UnicodeEncodeError as exc:
            yield loc, exc.start
    elif isinstance(obj, list):
        for i, item in enumerate(obj):
            yield from _unencodable(item, (*loc, i))
    elif isinstance(obj, dict):
        for key, value in obj.items():
            yield from _unencodable(value, (*loc, key))


def _not_json(reason: str) -> Rejection:
    return Rejection(400, f"request body is not valid JSON: {reason}")


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def _invalid_json(body: bytes, parser_message: str) -> Rejection:
    """pydantic's parser refused the body: not JSON at all (400), or JSON with invalid Unicode (422)."""
    try:
        obj = json.loads(body, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        return _not_json(parser_message.removeprefix("Invalid JSON: "))
    problems = [
        {"field": field_name(loc), "problem": f"not valid Unicode (unpaired surrogate at offset {offset})"}
        for loc, offset in _unencodable(obj)
    ]
    if not problems:
        return _not_json(parser_message.removeprefix("Invalid JSON: "))
    return _unprocessable(problems)


def _unprocessable(problems: list[dict[str, str]]) -> Rejection:
    summary = "; ".join(f"{p['field']}: {p['problem']}" for p in problems[:3])
    more = f" (+{len(problems) - 3} more)" if len(problems) > 3 else ""
    return Rejection(422, f"invalid request: {summary}{more}", problems[:MAX_LISTED])


def check_body(body: bytes, model: type[BaseModel]) -> Rejection | None:
    """None when ``body`` is a JSON document that ``model`` accepts, else why not."""
    if not body.strip():
        return _not_json("the body is empty; send a JSON object")
    try:
        model.model_validate_json(body)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_context=False, include_input=False)
        invalid = [e for e in errors if e["type"] == "json_invalid"]
        if invalid:
            return _invalid_json(body, str(invalid[0]["msg"]))
        return _unprocessable([{"field": field_name(tuple(e["loc"])), "problem": str(e["msg"])} for e in errors])
    return None
