"""The web console (/loupe/console): its page, its static modules, and its session calls (AILabTools
envelope). Everything else the console does goes through Loupe's own API routes, authenticated by
the session cookie (console_session); nothing here reads a service's state."""

from __future__ import annotations

from importlib.resources import files

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from loupe_common.errors import AilabError, LoupeError, ailab_envelope

from .. import console_session as cs
from ..bodies import parse_json_object, read_body
from ..context import GatewayDep, RequestId, secure_cookie, source_of
from ..sign_in_guard import refusal

router = APIRouter(prefix="/loupe/console", include_in_schema=False)
STATIC = files("loupe_gateway").joinpath("static/console")
MEDIA_TYPES = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml", ".html": "text/html"}
# Only this origin's own files: no inline script, no CDN, no framing.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; "
                               "script-src 'self'; connect-src 'self'; frame-ancestors 'none'; "
                               "form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}
SIGN_IN_BODY_LIMIT = 4096


def envelope(rid: str, data: dict) -> JSONResponse:
    status, body = ailab_envelope(request_id=rid, data=data)
    return JSONResponse(body, status_code=status)


@router.get("", response_class=HTMLResponse)
async def console_page() -> HTMLResponse:
    html = STATIC.joinpath("index.html").read_text(encoding="utf-8")
    return HTMLResponse(html, headers={**SECURITY_HEADERS, "Cache-Control": "no-store"})


@router.get("/static/{name}")
async def console_file(name: str) -> Response:
    suffix = name[name.rfind("."):] if "." in name else ""
    item = STATIC.joinpath(name)
    if "/" in name or name.startswith(".") or suffix not in MEDIA_TYPES or not item.is_file():
        raise AilabError("ERROR_FILE_NOT_FOUND", f"The console has no file {name}")
    return Response(item.read_bytes(), media_type=MEDIA_TYPES[suffix],
                    headers={**SECURITY_HEADERS, "Cache-Control": "no-cache"})


def _session_view(session: cs.ConsoleSession, gw: GatewayDep) -> dict:
    return {"accessKeyId": session.access_key_id, "role": session.key.role.value,
            "expiresAt": int(session.expires_at), "csrfToken": session.csrf(gw.settings),
            "region": gw.settings.region}


@router.post("/api/session")
async def sign_in(gw: GatewayDep, rid: RequestId, request: Request) -> JSONResponse:
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != "application/json":
        # Also what keeps another site's form from signing a browser in.
        raise AilabError("UNSUPPORTED_FILE_TYPES", "Send application/json")
    origin = request.headers.get("origin")
    if origin is not None and not cs.same_origin(request, origin):
        raise AilabError("ERROR_INVALID_PARAMETER", f"Sign-in from {origin} is not accepted")
    fields = parse_json_object(await read_body(request, SIGN_IN_BODY_LIMIT))
    key, secret = fields.get("accessKeyId"), fields.get("secretAccessKey")
    if not isinstance(key, str) or not isinstance(secret, str) or not key or not secret:
        raise AilabError("ERROR_INVALID_PARAMETER", "Give accessKeyId and secretAccessKey")
    source, account = source_of(request), key[:128]
    if wait := gw.sign_ins.wait_seconds(source, account):
        raise AilabError("AI_SERVICE_FLOW_RESTRICTION", refusal(wait))
    matched = gw.keys.matching(key, secret)
    if matched is None:
        gw.sign_ins.failed(source, account)
        raise AilabError("ERROR_USER_NOT_EXISTS", "The access key or the secret is wrong")
    gw.sign_ins.succeeded(source, account)
    session = cs.issue(gw.settings, gw.keys, matched)
    response = envelope(rid, _session_view(session, gw))
    response.set_cookie(cs.COOKIE, session.token, max_age=int(gw.settings.console_session_hours * 3600),
                        httponly=True, samesite="strict", path="/",
                        secure=secure_cookie(request, gw.settings))
    return response


def _current(request: Request, gw: GatewayDep) -> cs.ConsoleSession:
    try:
        return cs.authenticate(request, gw.settings, gw.keys)
    except LoupeError as err:
        raise AilabError("ERROR_USER_NOT_EXISTS", err.error.message) from None


@router.get("/api/session")
async def who_am_i(gw: GatewayDep, rid: RequestId, request: Request) -> JSONResponse:
    if cs.COOKIE not in request.cookies:
        raise AilabError("ERROR_USER_NOT_EXISTS", "Sign in with an access key of Loupe")
    return envelope(rid, _session_view(_current(request, gw), gw))


@router.delete("/api/session")
async def sign_out(gw: GatewayDep, rid: RequestId, request: Request) -> JSONResponse:
    if cs.COOKIE in request.cookies:
        _current(request, gw)  # the CSRF token too: another site cannot sign the user out
    response = envelope(rid, {})
    response.delete_cookie(cs.COOKIE, path="/", httponly=True, samesite="strict")
    return response
