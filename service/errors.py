"""One error contract for the API routes, as the OpenAPI document declares it.

Every refused request gets a 4xx with a JSON body `{"error": "what is wrong", "detail": "where"}`:
- 405 for another method than POST, 415 for a body that is not JSON, 413 for a body over MAX_BODY_BYTES
  (checked while it streams in, so a huge upload is cut off instead of buffered);
- BentoML's own 400s come in two other shapes (a list around the object for InvalidArgument, a list of
  pydantic errors in `detail` for validation errors): they are rewritten into this one.
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

API_ROUTES = frozenset({"/detect", "/detect_batch"})
# 256 texts of a few thousand characters fit many times over; the 100,000-character cap per text is for
# /detect. Larger bodies are refused before BentoML reads them into memory.
MAX_BODY_BYTES = 32 * 1024 * 1024
JSON_TYPES = ("application/json", "application/vnd.bentoml+json")


def error_body(error: str, detail: str = "") -> bytes:
    return json.dumps({"error": error, "detail": detail}).encode()


def normalised(body: bytes) -> bytes:
    """BentoML's error bodies in the documented shape; anything unparsable becomes the message."""
    if not body.strip():
        return error_body("request refused")
    try:
        data = json.loads(body)
    except ValueError:
        return error_body(body.decode("utf-8", "replace").strip() or "request refused")
    if isinstance(data, list) and len(data) == 1 and isinstance(data[0], dict):
        data = data[0]  # bentoml 1.4.39 wraps InvalidArgument bodies in a one-element list
    if not isinstance(data, dict):
        return error_body(str(data))
    detail = data.get("detail", "")
    if isinstance(detail, list):  # pydantic's errors: "texts.1: String should have at least 1 character"
        detail = "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', '')}" if isinstance(e, dict) else str(e)
            for e in detail
        )
    return error_body(str(data.get("error", "request refused")), str(detail))


class ErrorContract:
    """ASGI middleware around the API routes; other paths (health, metrics, docs) pass untouched."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] not in API_ROUTES:
            return await self.app(scope, receive, send)
        if scope["method"] != "POST":
            return await respond(
                send,
                405,
                error_body(f"{scope['method']} is not allowed on {scope['path']}", "send a POST with a JSON body"),
                [(b"allow", b"POST")],
            )
        headers = dict(scope["headers"])
        media_type = headers.get(b"content-type", b"application/json").decode("latin-1").split(";")[0].strip()
        if media_type.lower() not in JSON_TYPES:
            return await respond(
                send, 415, error_body(f"unsupported content type {media_type!r}", "send the body as application/json")
            )
        body = await read_body(receive)
        if body is None:
            return await respond(send, 413, error_body("request body too large", f"at most {MAX_BODY_BYTES} bytes"))
        await self.app(scope, replay(body), NormalisingSend(send))


async def read_body(receive: Receive) -> bytes | None:
    """The whole body, or None as soon as it exceeds MAX_BODY_BYTES."""
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def replay(body: bytes) -> Receive:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


async def respond(send: Send, status: int, body: bytes, extra_headers: list | None = None) -> None:
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        *(extra_headers or []),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class NormalisingSend:
    """Passes 2xx answers straight through; buffers an error answer and rewrites its body."""

    def __init__(self, send: Send) -> None:
        self.send, self.start, self.chunks = send, None, []

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start" and message["status"] >= 400:
            self.start = message
            return
        if self.start is None:
            return await self.send(message)
        self.chunks.append(message.get("body", b""))
        if message.get("more_body", False):
            return
        body = normalised(b"".join(self.chunks))
        keep = [
            (k, v) for k, v in self.start.get("headers", []) if k.lower() not in (b"content-length", b"content-type")
        ]
        await self.send(
            {
                **self.start,
                "headers": [
                    *keep,
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await self.send({"type": "http.response.body", "body": body})


def declare_in_openapi() -> None:
    """BentoML's OpenAPI lists 400, 404 and 500 for every API; add the 405, 413 and 415 answered here,
    with the same body schema."""
    from _bentoml_sdk.service import openapi
    from bentoml._internal.service.openapi.specification import MediaType, Reference, Response

    body = {"application/json": MediaType(schema=Reference(openapi.REF_TEMPLATE.format(model="InvalidArgument")))}
    for status, why in (
        (405, "Method Not Allowed: only POST"),
        (413, "Request body too large"),
        (415, "Unsupported Media Type: send application/json"),
    ):
        openapi.error_responses.setdefault(status, Response(description=why, content=body))
