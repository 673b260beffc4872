"""The one HTTP client for output files (inline previews and ``--output-dir`` downloads), made on first use.

Most sessions never fetch a file (hosted and eval use keep previews and saving off), so httpx and what it
imports are not loaded at startup: the first answer does not need them.

Output URLs come from the API's answers, so the client fetches only what a public CDN would serve: https on
a host that is public by its name and by every address it resolves to, without a user name or password, and
each redirect hop is checked the same way (the check sits in the transport, which every hop goes through).
The API's own hosts (the sandbox, an emulator on loopback) are trusted as the API itself is. A refused URL
fails like an unreachable one: the preview or the saved copy is skipped, the answer still goes out.
"""

from __future__ import annotations

import socket
from collections.abc import Iterable
from typing import TYPE_CHECKING, cast

import anyio

from clipia_mcp.core.validation import private_host
from clipia_mcp.providers.bounded import wrap_transports

if TYPE_CHECKING:
    import httpx


class MediaClient:
    """Lazily created ``httpx.AsyncClient`` shared by every media fetch of one process."""

    def __init__(self, timeout: float, client: httpx.AsyncClient | None = None,
                 trusted_hosts: Iterable[str] = ()) -> None:
        """``client``: use this one instead (tests pass a mock transport's); ``trusted_hosts``: the API's
        own hosts, whose files are fetched even over http or on loopback."""
        self._timeout = timeout
        self._client = client
        self.trusted_hosts = frozenset(h.lower() for h in trusted_hosts if h)

    def __repr__(self) -> str:
        return f"MediaClient(open={self._client is not None})"

    @property
    def http(self) -> httpx.AsyncClient:
        """The client (created now if this is the first fetch)."""
        if self._client is None:
            import httpx

            client = httpx.AsyncClient(timeout=httpx.Timeout(self._timeout, connect=10.0), follow_redirects=True,
                                       max_redirects=5)
            self._client = wrap_transports(client, lambda inner, via_proxy: cast(
                "httpx.AsyncBaseTransport", PublicOnly(inner, self.trusted_hosts, check_peer=not via_proxy)))
        return self._client

    async def aclose(self) -> None:
        """Close the client if one was made."""
        if self._client is not None:
            await self._client.aclose()
            self._client = None


class PublicOnly:  # an httpx.AsyncBaseTransport (httpx is imported on the first fetch, not here)
    """An httpx transport that refuses (``httpx.ConnectError``) any request that is not to a public https
    host, unless its host is trusted; everything else goes to ``inner``."""

    def __init__(self, inner: httpx.AsyncBaseTransport, trusted_hosts: frozenset[str], *,
                 check_peer: bool = True) -> None:
        """``check_peer``: also refuse an answer from a private address (off through a proxy, whose own
        address says nothing about the host behind it)."""
        self.inner = inner
        self.trusted_hosts = trusted_hosts
        self.check_peer = check_peer

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        import httpx

        reason = await refusal(request.url, self.trusted_hosts)
        if reason is not None:
            raise httpx.ConnectError(f"not fetched: {reason}", request=request)
        response = await self.inner.handle_async_request(request)
        if self.check_peer and (request.url.host or "").lower() not in self.trusted_hosts:
            # The connection resolved the name again: a name that turned private since (DNS rebinding) is
            # caught here, before a byte of its body is read.
            stream = response.extensions.get("network_stream")
            peer = stream.get_extra_info("server_addr") if stream is not None else None
            if peer and private_host(str(peer[0])):
                await response.aclose()
                raise httpx.ConnectError("not fetched: the host answered from a private address", request=request)
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()

    async def __aenter__(self) -> PublicOnly:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


async def refusal(url: httpx.URL, trusted_hosts: frozenset[str]) -> str | None:
    """Why ``url`` must not be fetched, or None when it may be."""
    host = (url.host or "").lower()
    if url.userinfo:
        return "the URL carries a user name or password"
    if host in trusted_hosts:
        return None if url.scheme in ("http", "https") else "not an http(s) URL"
    if url.scheme != "https":
        return "not an https URL"
    if not host or private_host(host):
        return "not a public host"
    try:
        addresses = await anyio.getaddrinfo(host, url.port or 443, type=socket.SOCK_STREAM)
    except OSError:
        return "the host does not resolve"
    if any(private_host(str(sockaddr[0])) for *_, sockaddr in addresses):
        return "the host resolves to a private address"
    return None
