"""Turn pydantic validation errors into AWS-style ValidationException messages that name the
field as the API does ("Value 'x' at 'projectName' failed to satisfy constraint: ...")."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from loupe_common.errors import LoupeError, validation

M = TypeVar("M", bound=BaseModel)


def wire_name(part: str | int) -> str:
    if isinstance(part, int):
        return f"member.{part + 1}"
    if "_" in part:
        head, *rest = part.split("_")
        return head + "".join(p[:1].upper() + p[1:] for p in rest)
    return part[:1].lower() + part[1:]


def _constraint(error: dict[str, Any]) -> str:
    ctx = error.get("ctx", {})
    kind = error["type"]
    if kind == "missing":
        return "Member must not be null"
    if kind == "string_pattern_mismatch":
        return f"Member must satisfy regular expression pattern: {ctx['pattern']}"
    if kind == "string_too_long":
        return f"Member must have length less than or equal to {ctx['max_length']}"
    if kind == "string_too_short":
        return f"Member must have length greater than or equal to {ctx['min_length']}"
    if kind in ("too_long", "too_short"):
        bound = ctx.get("max_length", ctx.get("min_length"))
        word = "less" if kind == "too_long" else "greater"
        return f"Member must have length {word} than or equal to {bound}"
    if kind in ("less_than_equal", "greater_than_equal"):
        word = "less" if kind == "less_than_equal" else "greater"
        return f"Member must have value {word} than or equal to {ctx.get('le', ctx.get('ge'))}"
    if kind in ("enum", "literal_error"):
        return f"Member must satisfy enum value set: [{ctx.get('expected', '')}]"
    return error["msg"]


def _value(error: dict[str, Any]) -> str:
    if error["type"] == "missing":
        return "Value null"
    value = error.get("input")
    return f"Value '{value}'" if isinstance(value, str | int | float | bool) else "Value"


def to_validation_error(raw: Sequence[Mapping[str, Any]], skip: tuple[str, ...] = ()) -> LoupeError:
    """skip drops leading location parts (FastAPI's "path"/"query") from the field name."""
    errors = [{**e, "loc": tuple(p for p in e["loc"] if p not in skip)} for e in raw]
    parts = [
        f"{_value(e)} at '{'.'.join(wire_name(p) for p in e['loc']) or 'body'}' "
        f"failed to satisfy constraint: {_constraint(e)}"
        for e in errors
    ]
    count = len(parts)
    return validation(f"{count} validation error{'s' if count > 1 else ''} detected: " + "; ".join(parts))


def build(model: type[M], **fields: Any) -> M:
    """Construct a command or request model; a bad field becomes a ValidationException. An absent
    value (None) is left out, so a required field reads "must not be null"."""
    try:
        return model.model_validate({k: v for k, v in fields.items() if v is not None})
    except ValidationError as exc:
        raise to_validation_error(exc.errors()) from None
