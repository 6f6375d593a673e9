"""JSON from callers, parsed with limits: one owner for what Loupe accepts as JSON (request bodies,
manifest lines, human-loop input).

Python's json module accepts things that later break a service: nesting deep enough to exhaust
the recursion limit (RecursionError in the parser or in validation), integers of thousands of
digits (ValueError past Python's 4,300-digit limit, or slow arithmetic), NaN and Infinity (not
JSON, and not representable in the replies), and unpaired surrogates ("\\ud800" parses, but the
string cannot be encoded to UTF-8 for Kafka, MongoDB or an error message). Each is refused here
with a reason (a clause: callers say what it was about), so the route answers a validation
error in its own API's format and a manifest line is rejected with its reason.
"""

from __future__ import annotations

import json
from typing import Any

MAX_DEPTH = 32  # the deepest real body (flow definitions' conditions) nests about 12 levels
MAX_NUMBER_CHARS = 40  # digits, sign, point and exponent of one number


class JsonRefused(ValueError):
    """Not valid JSON, or JSON past one of the limits above; the message says which, in words."""


def _number(text: str, kind: type) -> Any:
    if len(text) > MAX_NUMBER_CHARS:
        raise JsonRefused(f"a number has {len(text)} characters; the limit is {MAX_NUMBER_CHARS}")
    value = kind(text)
    if kind is float and value in (float("inf"), float("-inf")):
        raise JsonRefused(f"the number {text} is out of range")
    return value


def _constant(name: str) -> Any:
    raise JsonRefused(f"{name} is not a JSON value")


def _check(value: Any) -> None:
    """Depth and strings, iteratively (a recursive walk would fail on the very input it guards)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > MAX_DEPTH:
                raise JsonRefused(f"it nests deeper than {MAX_DEPTH} levels")
            children = [*item.keys(), *item.values()] if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
        elif isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                raise JsonRefused("a string has an unpaired surrogate (\\ud800-\\udfff)") from None


def loads(body: bytes | str) -> Any:
    """json.loads with the limits above; JsonRefused for anything else it would accept or crash on."""
    try:
        value = json.loads(body, parse_int=lambda t: _number(t, int), parse_float=lambda t: _number(t, float),
                           parse_constant=_constant)
    except JsonRefused:
        raise
    except RecursionError:
        raise JsonRefused(f"it nests deeper than {MAX_DEPTH} levels") from None
    except (ValueError, UnicodeDecodeError) as error:  # JSONDecodeError is a ValueError
        raise JsonRefused(f"not valid JSON ({_reason(error)})") from None
    _check(value)
    return value


def _reason(error: Exception) -> str:
    if isinstance(error, json.JSONDecodeError):
        return f"{error.msg} at line {error.lineno} column {error.colno}"
    if isinstance(error, UnicodeDecodeError):
        return "it is not UTF-8"
    return "unreadable"
