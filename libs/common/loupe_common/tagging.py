"""Tag rules shared by every resource owner: at most 200 tags, 'aws:' keys reserved, and keys
stored escaped because MongoDB field names cannot hold '.' or start with '$'."""

from __future__ import annotations

from .errors import ErrorCode, LoupeError, ResourceType, validation
from .lookout import MAX_TAGS, Tag


def field_name(key: str) -> str:
    return key.replace("%", "%25").replace(".", "%2E").replace("$", "%24")


def tag_key(field: str) -> str:
    return field.replace("%2E", ".").replace("%24", "$").replace("%25", "%")


def tag_update(stored: dict[str, str], tags: list[Tag], *, arn: str, resource_type: ResourceType) -> dict:
    """The $set document that adds `tags` to a resource holding `stored` (escaped) tags."""
    if any(tag.key.lower().startswith("aws:") for tag in tags):
        raise validation("Tag keys starting with 'aws:' are reserved")
    updates = {field_name(tag.key): tag.value for tag in tags}
    total = len(stored.keys() | updates.keys())
    if total > MAX_TAGS:
        raise LoupeError(
            ErrorCode.QUOTA_EXCEEDED,
            f"A resource can have at most {MAX_TAGS} tags; this request would leave {total}",
            resource_id=arn,
            resource_type=resource_type,
            quota_code="L-TAGS",
        )
    return {f"tags.{name}": value for name, value in updates.items()}


def tag_removal(keys: list[str]) -> dict:
    return {f"tags.{field_name(key)}": "" for key in keys}


def tag_list(stored: dict[str, str]) -> list[dict[str, str]]:
    return [{"Key": tag_key(name), "Value": value} for name, value in sorted(stored.items())]
