"""API answers read with a bound: an upstream's body is never larger in memory than ``max_bytes``.

Every provider's HTTP client sits on this transport. It asks for uncompressed answers (an API's JSON is
small) and inflates a compressed one itself, to at most ``max_bytes`` (a 1 MB gzip of a gigabyte never
inflates in memory), and it stops reading a body past ``max_bytes``, whether declared or not. Refusals raise
:class:`AnswerTooLarge`, a ``ValueError``: the providers report an unreadable answer
(``upstream_invalid_response``).
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import httpx


class AnswerTooLarge(ValueError):
    """An upstream answer over the size bound (inflated, if it came compressed) or in a coding not inflated here."""


def wrap_transports(client: httpx.AsyncClient,
                    wrap: Callable[[httpx.AsyncBaseTransport, bool], httpx.AsyncBaseTransport]) -> httpx.AsyncClient:
    """``client`` with ``wrap(transport, via_proxy)`` around its transport and each proxy mount it made from
    the environment (``HTTPS_PROXY``, ``NO_PROXY``): passing ``transport=`` to httpx would turn those off."""
    client._transport = wrap(client._transport, False)  # noqa: SLF001 - httpx has no public hook
    client._mounts = {pattern: None if t is None else wrap(t, True)  # noqa: SLF001
                      for pattern, t in client._mounts.items()}  # noqa: SLF001
    return client


def bounded_transport(inner: httpx.AsyncBaseTransport, max_bytes: int) -> httpx.AsyncBaseTransport:
    """``inner``, with every answer's body bounded to ``max_bytes`` (after inflating it, if compressed)."""
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
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > self.max_bytes:
                await response.aclose()
                raise AnswerTooLarge(f"the answer is over {self.max_bytes} bytes")
            stream = response.stream
            assert isinstance(stream, httpx.AsyncByteStream)
            encoding = response.headers.get("content-encoding", "identity").strip().lower()
            if encoding in ("", "identity"):
                response.stream = _Capped(stream, self.max_bytes)
                return response
            # Compressed although identity was asked for (a gateway's error page, typically): inflated here,
            # within the bound, so its status and headers (a 429's Retry-After) still mean what they say.
            raw = b"".join([chunk async for chunk in _Capped(stream, self.max_bytes)])
            await response.aclose()
            headers = [(k, v) for k, v in response.headers.multi_items()
                       if k.lower() not in ("content-encoding", "content-length")]
            body = _inflate(raw, encoding, self.max_bytes)
            return httpx.Response(response.status_code, headers=headers, content=body, request=request,
                                  extensions=response.extensions)

        async def aclose(self) -> None:
            await self._inner.aclose()

    return BoundedTransport


def _inflate(raw: bytes, encoding: str, max_bytes: int) -> bytes:
    """``raw`` decompressed (gzip or deflate) to at most ``max_bytes``; any other coding, or more, is refused."""
    import zlib

    if encoding not in ("gzip", "x-gzip", "deflate"):
        raise AnswerTooLarge(f"the answer is {encoding[:20]}-encoded")
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS if "gzip" in encoding else zlib.MAX_WBITS)
    try:
        out = inflater.decompress(raw, max_bytes + 1)
    except zlib.error as exc:
        raise AnswerTooLarge(f"the {encoding} answer does not decompress") from exc
    if len(out) > max_bytes or inflater.unconsumed_tail:
        raise AnswerTooLarge(f"the answer inflates past {max_bytes} bytes")
    return out
