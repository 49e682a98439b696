"""A fix to BentoML's request path that the tail latency needed.

bentoml 1.4.39's TimeoutMiddleware schedules `loop.call_later(timeout, ...)` for every request and never
cancels it. Each timer lives for the whole traffic timeout (60 s here) and holds the request's context,
its OpenTelemetry span and a future: at 1,000 requests/s that is 60,000 live timers, a growing event-loop
heap, and Python's full garbage collections walking all of them (gen-2 pauses that grew from 6 to 63 ms
within 6 s of load at concurrency 16, measured with gc.callbacks). The timer only matters until the
response starts, so it is cancelled then. The timeout itself still answers 504 as before.
"""

from __future__ import annotations

import asyncio

_installed = False


def install() -> None:
    global _installed
    if _installed:
        return
    from bentoml._internal.server.http.traffic import TimeoutMiddleware

    TimeoutMiddleware.__call__ = _timeout_middleware_call
    _installed = True


async def _timeout_middleware_call(self, scope, receive, send) -> None:
    """TimeoutMiddleware.__call__ of bentoml 1.4.39, with its timer cancelled once the response starts."""
    from starlette.responses import JSONResponse

    if scope["type"] not in ("http", "websocket"):
        return await self.app(scope, receive, send)
    loop = asyncio.get_running_loop()
    waiter = loop.create_future()
    timer = loop.call_later(self.timeout, self._set_timer_out, waiter)

    async def _send(message) -> None:
        if not waiter.done():
            waiter.set_result(None)
        await send(message)

    fut = asyncio.ensure_future(self.app(scope, receive, _send), loop=loop)
    try:
        await waiter
    except TimeoutError:
        if fut.cancel():
            await JSONResponse(
                {"error": f"Not able to process the request in {self.timeout} seconds"}, status_code=504
            )(scope, receive, send)
    else:
        timer.cancel()
        await fut
    finally:
        timer.cancel()
