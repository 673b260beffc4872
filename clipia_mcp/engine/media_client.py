"""The one HTTP client for output files (inline previews and ``--output-dir`` downloads), made on first use.

Most sessions never fetch a file (hosted and eval use keep previews and saving off), so httpx and what it
imports are not loaded at startup: the first answer does not need them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import httpx


class MediaClient:
    """Lazily created ``httpx.AsyncClient`` shared by every media fetch of one process."""

    def __init__(self, timeout: float, client: httpx.AsyncClient | None = None) -> None:
        """``client``: use this one instead (tests pass a mock transport's)."""
        self._timeout = timeout
        self._client = client

    def __repr__(self) -> str:
        return f"MediaClient(open={self._client is not None})"

    @property
    def http(self) -> httpx.AsyncClient:
        """The client (created now if this is the first fetch)."""
        if self._client is None:
            import httpx

            self._client = httpx.AsyncClient(timeout=httpx.Timeout(self._timeout, connect=10.0),
                                             follow_redirects=True)
        return self._client

    async def aclose(self) -> None:
        """Close the client if one was made."""
        if self._client is not None:
            await self._client.aclose()
            self._client = None
