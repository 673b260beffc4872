"""API answers read with a bound: an upstream's body is never larger in memory than ``max_bytes``.

Every provider's HTTP client sits on this transport. It asks for uncompressed answers (an API's JSON is
small) and refuses a compressed one, so a 1 MB gzip of a gigabyte never inflates in memory, and it stops
reading a body past ``max_bytes``, whether declared or not. Both refusals raise :class:`AnswerTooLarge`, a
``ValueError``: the providers report an unreadable answer (``upstream_invalid_response``).
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import httpx


class AnswerTooLarge(ValueError):
    """An upstream answer over the size bound, or compressed although identity was asked for."""


def bounded_transport(inner: httpx.AsyncBaseTransport, max_bytes: int) -> httpx.AsyncBaseTransport:
    """``inner``, with every answer's body bounded to ``max_bytes`` and not compressed."""
    return _bounded_class()(inner, max_bytes)


@functools.cache
def _bounded_class() -> Callable[[httpx.AsyncBaseTransport, int], httpx.AsyncBaseTransport]:
    """Defined on first use: httpx is imported when the first client is built, not at server start."""
    import httpx

    class _Capped(httpx.AsyncByteStream):
        def __init__(self, inner: httpx.AsyncByteStream, max_bytes: int) -> None:
            self._inner = inner
            self._max = max_bytes

        async def __aiter__(self) -> AsyncIterator[bytes]:
            size = 0
            async for chunk in self._inner:
                size += len(chunk)
                if size > self._max:
                    raise AnswerTooLarge(f"the answer is over {self._max} bytes")
                yield chunk

        async def aclose(self) -> None:
            await self._inner.aclose()

    class BoundedTransport(httpx.AsyncBaseTransport):
        def __init__(self, inner: httpx.AsyncBaseTransport, max_bytes: int) -> None:
            self._inner = inner
            self.max_bytes = max_bytes

        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            request.headers["Accept-Encoding"] = "identity"
            response = await self._inner.handle_async_request(request)
            encoding = response.headers.get("content-encoding", "identity").strip().lower()
            declared = response.headers.get("content-length", "")
            if encoding not in ("", "identity") or (declared.isdigit() and int(declared) > self.max_bytes):
                await response.aclose()
                raise AnswerTooLarge(f"the answer is {encoding}-encoded or over {self.max_bytes} bytes")
            stream = response.stream
            assert isinstance(stream, httpx.AsyncByteStream)
            response.stream = _Capped(stream, self.max_bytes)
            return response

        async def aclose(self) -> None:
            await self._inner.aclose()

    return BoundedTransport
