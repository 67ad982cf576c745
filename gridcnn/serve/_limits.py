"""The outermost layer of the app: bodies over the size limit get 413, and an unexpected failure gets a 500 that
names nothing inside, its traceback going to the server's log. Plain ASGI, so it costs nothing per request."""

from __future__ import annotations

import json
import logging

log = logging.getLogger("gridcnn.serve")


class _TooLarge(Exception):
    pass


class BodyLimit:
    """ASGI middleware: refuse bodies over ``max_mb`` megabytes (by Content-Length, or while reading the body)."""

    def __init__(self, app, max_mb: float):
        self.app = app
        self.max_mb = max_mb
        self.max_bytes = int(max_mb * 1024 * 1024)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = self.max_bytes
        too_large = (f"The request body is larger than this server's limit of {self.max_mb:g} MB "
                     "(gridcnn serve --max-upload-mb). Send smaller or fewer files.")
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            return await _error(send, 413, too_large)
        received = 0
        started = False

        async def counting_receive():
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > limit:
                raise _TooLarge
            return message

        async def tracking_send(message):
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except _TooLarge:
            if not started:
                await _error(send, 413, too_large)
        except Exception:
            log.exception("%s %s failed", scope.get("method"), scope.get("path"))
            if not started:
                await _error(send, 500, "The server failed to answer this request; the details are in its log.")


async def _error(send, status: int, message: str) -> None:
    body = json.dumps({"error": message}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
