"""The error model: one exception type inside Loupe, rendered in each API's own format at the edge."""

from __future__ import annotations

import uuid
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field


class ErrorCode(StrEnum):
    """AWS-style error codes (X-Amzn-ErrorType) shared by Lookout for Vision and A2I."""

    VALIDATION = "ValidationException"
    ACCESS_DENIED = "AccessDeniedException"
    NOT_FOUND = "ResourceNotFoundException"
    CONFLICT = "ConflictException"
    QUOTA_EXCEEDED = "ServiceQuotaExceededException"
    THROTTLING = "ThrottlingException"
    INTERNAL = "InternalServerException"


HTTP_STATUS: dict[ErrorCode, int] = {
    ErrorCode.VALIDATION: 400,
    ErrorCode.QUOTA_EXCEEDED: 402,
    ErrorCode.ACCESS_DENIED: 403,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.CONFLICT: 409,
    ErrorCode.THROTTLING: 429,
    ErrorCode.INTERNAL: 500,
}

RETRY_AFTER_SECONDS = 1


class ResourceType(StrEnum):
    PROJECT = "PROJECT"
    DATASET = "DATASET"
    MODEL = "MODEL"
    TRIAL = "TRIAL"
    MODEL_PACKAGE_JOB = "MODEL_PACKAGE_JOB"


class ServiceError(BaseModel):
    """An error as it travels in a reply message."""

    code: ErrorCode
    message: str
    resource_id: str | None = None
    resource_type: ResourceType | None = None
    quota_code: str | None = None
    service_code: str = "lookoutvision"
    ailab_code: str | None = Field(None, description="What this failure is called on a Loupe-native route, "
                                   "when it is more precise than AILAB_FOR_AWS[code] (an image too large, "
                                   "too small, ...)")


class LoupeError(Exception):
    def __init__(
        self,
        code: ErrorCode,
        message: str,
        *,
        resource_id: str | None = None,
        resource_type: ResourceType | None = None,
        quota_code: str | None = None,
        service_code: str = "lookoutvision",
        ailab_code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.error = ServiceError(
            code=code,
            message=message,
            resource_id=resource_id,
            resource_type=resource_type,
            quota_code=quota_code,
            service_code=service_code,
            ailab_code=ailab_code,
        )

    @classmethod
    def from_service_error(cls, err: ServiceError) -> LoupeError:
        return cls(
            err.code,
            err.message,
            resource_id=err.resource_id,
            resource_type=err.resource_type,
            quota_code=err.quota_code,
            service_code=err.service_code,
            ailab_code=err.ailab_code,
        )

    @property
    def status(self) -> int:
        return HTTP_STATUS[self.error.code]


def validation(message: str, *, ailab_code: str | None = None) -> LoupeError:
    return LoupeError(ErrorCode.VALIDATION, message, ailab_code=ailab_code)


def not_found(resource_type: ResourceType, resource_id: str, message: str) -> LoupeError:
    return LoupeError(
        ErrorCode.NOT_FOUND, message, resource_id=resource_id, resource_type=resource_type
    )


def conflict(resource_type: ResourceType, resource_id: str, message: str) -> LoupeError:
    return LoupeError(
        ErrorCode.CONFLICT, message, resource_id=resource_id, resource_type=resource_type
    )


def aws_error_response(err: ServiceError) -> tuple[int, dict[str, str], dict[str, Any]]:
    """Status, headers and JSON body of an AWS rest-json error, as botocore and the JS SDK parse it."""
    status = HTTP_STATUS[err.code]
    headers = {"X-Amzn-ErrorType": err.code.value}
    body: dict[str, Any] = {"__type": err.code.value, "message": err.message, "Message": err.message}
    if err.resource_id is not None:
        body["ResourceId"] = err.resource_id
    if err.resource_type is not None:
        body["ResourceType"] = err.resource_type.value
    if err.code is ErrorCode.QUOTA_EXCEEDED:
        body["QuotaCode"] = err.quota_code or "L-LOUPE"
        body["ServiceCode"] = err.service_code
    if err.code in (ErrorCode.THROTTLING, ErrorCode.INTERNAL):
        headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return status, headers, body


# --- AILabTools envelope (Loupe-native routes and result messages) ---------------------------

AILAB_CODES: dict[str, tuple[int, str]] = {
    "ERROR_PARAMETERS": (400, "Invalid parameters."),
    "MISSING_PARAMETERS": (400, "Missing parameters."),
    "ERROR_INVALID_PARAMETER": (400, "Invalid parameter."),
    "FILE_DECODING_FAILURE": (400, "File decoding failed."),
    "PROCESSING_FAILURE": (400, "Processing failed."),
    "ERROR_USER_NOT_EXISTS": (401, "The user does not exist."),
    "AI_SERVICE_UNAUTHORIZED": (
        403,
        "AI service unauthorized. Please try again later. If not resolved promptly, contact the platform.",
    ),
    "ERROR_RESOURCE_NOT_FOUND": (404, "Resource not found."),
    "ERROR_FILE_NOT_FOUND": (404, "File not found."),
    "ERROR_ILLEGAL_OPERATION": (405, "Illegal operation."),
    "ERROR_DATA_ALREADY_EXISTS": (409, "Data already exists."),
    "ERROR_RESOURCE_IN_USE": (409, "Resource is in use."),
    "ERROR_TASK_CONFLICT": (409, "Task conflict."),
    "FILE_SIZE_EXCEEDS_LIMIT": (413, "File size exceeds limit."),
    "ERROR_REQUEST_BODY_TOO_LARGE": (413, "Request body size exceeds limit."),
    "UNSUPPORTED_FILE_TYPES": (415, "Unsupported file types."),
    "UNSUPPORTED_PARAMETER_VALUES": (422, "Invalid parameter values."),
    "FILE_RESOLUTION_EXCEEDS_LIMITS": (422, "File resolution exceeds limits."),
    "ERROR_LOW_RESOLUTION": (422, "File resolution too low."),
    "ERROR_HIGH_RESOLUTION": (422, "File resolution too high."),
    "ERROR_INVALID_FILE": (422, "Invalid file."),
    "SERVICE_INTERNAL_ERROR": (
        500,
        "Service internal error. Please try again later. If not resolved promptly, contact the platform.",
    ),
    "AI_SERVICE_FLOW_RESTRICTION": (
        503,
        "AI service is rate-limited. Please try again later. If not resolved promptly, contact the platform.",
    ),
    "AI_SERVICE_TIMEOUT": (
        504,
        "AI service timeout. Please try again later. If not resolved promptly, contact the platform.",
    ),
}

# How an AWS-style error reads on a Loupe-native route.
AILAB_FOR_AWS: dict[ErrorCode, str] = {
    ErrorCode.VALIDATION: "ERROR_INVALID_PARAMETER",
    ErrorCode.ACCESS_DENIED: "AI_SERVICE_UNAUTHORIZED",
    ErrorCode.NOT_FOUND: "ERROR_RESOURCE_NOT_FOUND",
    ErrorCode.CONFLICT: "ERROR_RESOURCE_IN_USE",
    ErrorCode.QUOTA_EXCEEDED: "ERROR_PARAMETERS",
    ErrorCode.THROTTLING: "SERVICE_INTERNAL_ERROR",
    ErrorCode.INTERNAL: "SERVICE_INTERNAL_ERROR",
}


class AilabError(Exception):
    """An error raised on a Loupe-native route, with a code from the AILabTools catalogue."""

    def __init__(self, code: str, message: str) -> None:
        if code not in AILAB_CODES:
            raise ValueError(f"unknown AILabTools code {code}")
        super().__init__(message)
        self.code = code
        self.message = message

    @property
    def status(self) -> int:
        return AILAB_CODES[self.code][0]


def new_request_id() -> str:
    return str(uuid.uuid4())


def ailab_envelope(
    *,
    request_id: str,
    code: str = "",
    message: str = "",
    data: dict[str, Any] | None = None,
) -> tuple[int, dict[str, Any]]:
    """The AILabTools public response: error_code 0 on success, else the HTTP status."""
    status = AILAB_CODES[code][0] if code else 200
    body: dict[str, Any] = {
        "request_id": request_id,
        "log_id": request_id.replace("-", "")[:20],
        "error_code": 0 if status == 200 else status,
        "error_detail": {
            "status_code": status,
            "code": code,
            "code_message": AILAB_CODES[code][1] if code else "",
            "message": message,
        },
    }
    if data is not None:
        body["data"] = data
    return status, body


# --- Huawei Cloud style (Image Recognition routes) -------------------------------------------


class HuaweiError(Exception):
    """An error in Huawei Cloud's shape: {"error_code": "AIS.0014", "error_msg": "..."} with the
    HTTP status the reference gives for that code, and an X-Request-Id header."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    def body(self) -> dict[str, str]:
        return {"error_code": self.code, "error_msg": self.message}
