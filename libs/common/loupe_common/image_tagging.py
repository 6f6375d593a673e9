"""Contracts of image tagging (Huawei Image Recognition v1.0 and v2): the request fields and limits
of the reference, its error catalogue, and the headers of a tagging request on the tagging topic.

Every error of the reference answers HTTP 400 with {"error_code", "error_msg"} (section 6.2).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

MAX_IMAGE_BYTES = 10 * 1024 * 1024  # decoded
MIN_NARROW_SIDE = 16                # the narrow side must be greater than 15 px
MAX_WIDE_SIDE = 4096
FORMATS = ("JPEG", "PNG", "BMP")
LANGUAGES = ("zh", "en")
Version = Literal["v1", "v2"]
DEFAULT_LIMIT = {"v1": 30, "v2": 50}
MAX_LIMIT = {"v2": 150}  # huaweicloudsdkimage's ImageTaggingReq: "at most 150"
DEFAULT_THRESHOLD = {"v1": 0.0, "v2": 60.0}
TOKEN_LIFETIME_SECONDS = 24 * 3600

# code -> the reference's description (the error_msg when nothing more specific is said)
ERRORS: dict[str, str] = {
    "AIS.0012": "The request parameter is not supported.",
    "AIS.0014": "The JSON format of the input data is incorrect.",
    "AIS.0501": "The input parameter is invalid.",
    "AIS.0502": "The image format is not supported.",
    "AIS.0503": "The image is damaged.",
    "AIS.0504": "The image size does not meet requirements.",
    "AIS.0505": "Failed to run the algorithm.",
    "AIS.0506": "An internal error occurred.",
    "APIG.0101": "The API does not exist or has not been published.",
    "APIG.0201": "The request body is oversized.",
    "APIG.0301": "Incorrect IAM authentication information.",
    "APIG.0308": "The request is sent too fast and exceeds the default rate limit of the service.",
    "ModelArts.4101": "The token is empty.",
    "ModelArts.4102": "Failed to parse the token.",
    "ModelArts.4103": "The token is invalid.",
    "ModelArts.4203": "No access permission.",
    "ModelArts.4601": "The external URL is invalid.",
    "ModelArts.4603": "The file failed to be downloaded from the external URL.",
}
ERROR_STATUS = 400  # the status the reference gives every code above


@dataclass(frozen=True)
class TaggingParams:
    version: Version
    language: str
    limit: int
    threshold: float


# A tagging request on loupe.tagging.requests: the image bytes in the value (or a blob key in
# H_BLOB, claim check), the parameters in these headers; the reply is a Reply whose result is
# {"result": ...} or {"error_code", "error_msg"}.
H_VERSION = "loupe-tagging-version"
H_LANGUAGE = "loupe-tagging-language"
H_LIMIT = "loupe-tagging-limit"
H_THRESHOLD = "loupe-tagging-threshold"
