"""How answers leave the gateway: AWS rest-json for the AWS-style routes, the AILabTools envelope
for Loupe-native routes. Every response carries x-amzn-RequestId."""

from __future__ import annotations

import logging
import time
import uuid

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from loupe_common.errors import (
    AILAB_FOR_AWS,
    AilabError,
    ErrorCode,
    LoupeError,
    ailab_envelope,
    aws_error_response,
    validation,
)
from loupe_common.image_tagging import ERRORS
from loupe_common.logs import log_request
from loupe_common.messages import Reply
from loupe_common.metrics import HTTP_REQUEST_SECONDS

from .bodies import BodyTooLarge
from .validation import to_validation_error

log = logging.getLogger("loupe.gateway")
NATIVE_PREFIX = "/loupe/"
HUAWEI_PREFIXES = ("/v1.0/", "/v2/", "/v3/")  # Image Recognition and its token call
QUIET_ROUTES = {"/health", "/ready", "/metrics"}  # probed every few seconds: counted, not logged


class RequestIdMiddleware:
    """Gives each request an id (request.state.request_id) and returns it as x-amzn-RequestId;
    times it (loupe_http_request_seconds, by route template) and logs it as one JSON line; tells
    request.state.on_response, when a route set one, the status that went out."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = str(uuid.uuid4())
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.perf_counter()
        status = [500]

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
                message.setdefault("headers", []).append((b"x-amzn-requestid", request_id.encode()))
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            if (on_response := scope["state"].get("on_response")) is not None:
                on_response(status[0])  # 500 when no answer went out
            seconds = time.perf_counter() - started
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            HTTP_REQUEST_SECONDS.labels(scope["method"], route, str(status[0])).observe(seconds)
            if route not in QUIET_ROUTES:
                log_request(request_id=request_id, method=scope["method"], path=scope["path"], route=route,
                            status=status[0], ms=round(seconds * 1000, 2))


def reply_response(reply: Reply) -> JSONResponse:
    """A service's reply as the HTTP response of an AWS-style route."""
    return JSONResponse(reply.unwrap(), status_code=reply.status)


def _is_native(request: Request) -> bool:
    return request.url.path.startswith(NATIVE_PREFIX)


def render(request: Request, err: LoupeError) -> JSONResponse:
    if _is_native(request):
        status, body = ailab_envelope(
            request_id=request.state.request_id,
            code=AILAB_FOR_AWS[err.error.code],
            message=err.error.message,
        )
        return JSONResponse(body, status_code=status)
    status, headers, body = aws_error_response(err.error)
    return JSONResponse(body, status_code=status, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(LoupeError)
    async def on_loupe_error(request: Request, exc: LoupeError) -> JSONResponse:
        return render(request, exc)

    @app.exception_handler(AilabError)
    async def on_ailab_error(request: Request, exc: AilabError) -> JSONResponse:
        status, body = ailab_envelope(
            request_id=request.state.request_id, code=exc.code, message=exc.message
        )
        return JSONResponse(body, status_code=status)

    @app.exception_handler(BodyTooLarge)
    async def on_too_large(request: Request, exc: BodyTooLarge) -> JSONResponse:
        if _is_native(request):
            return await on_ailab_error(
                request, AilabError("FILE_SIZE_EXCEEDS_LIMIT", f"The body exceeds {exc.limit} bytes")
            )
        return render(request, validation(f"The request body exceeds the limit of {exc.limit} bytes"))

    @app.exception_handler(RequestValidationError)
    async def on_invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return render(request, to_validation_error(list(exc.errors()),
                                                   skip=("path", "query", "header", "body")))

    @app.exception_handler(StarletteHTTPException)
    async def on_http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if request.url.path.startswith(HUAWEI_PREFIXES):
            return JSONResponse({"error_code": "APIG.0101",
                                 "error_msg": f"The API does not exist or has not been "
                                 f"published: {request.method} {request.url.path}"[:300]},
                                status_code=400, headers={"X-Request-Id": request.state.request_id})
        if _is_native(request):
            code = "ERROR_ILLEGAL_OPERATION" if exc.status_code == 405 else "ERROR_RESOURCE_NOT_FOUND"
            status, body = ailab_envelope(request_id=request.state.request_id, code=code,
                                          message=str(exc.detail))
            return JSONResponse(body, status_code=status)
        kind = "UnknownOperationException"
        return JSONResponse(
            {"__type": kind, "message": f"{request.method} {request.url.path}: {exc.detail}"},
            status_code=exc.status_code,
            headers={"X-Amzn-ErrorType": kind},
        )

    @app.exception_handler(Exception)
    async def on_crash(request: Request, exc: Exception) -> JSONResponse:
        # Starlette answers this outside every middleware: the request id header is added here.
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        request_id = getattr(request.state, "request_id", None) or str(uuid.uuid4())
        if request.url.path.startswith(HUAWEI_PREFIXES):
            response = JSONResponse({"error_code": "AIS.0506", "error_msg": ERRORS["AIS.0506"]},
                                    status_code=500, headers={"X-Request-Id": request_id})
        else:
            response = render(request, LoupeError(ErrorCode.INTERNAL, "Internal error; try again"))
        response.headers["x-amzn-RequestId"] = request_id
        return response
