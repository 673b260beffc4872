"""OAuth resource-server mode: bearer tokens checked by RFC 7662 token introspection.

Plugged into the SDK as a ``TokenVerifier``; the SDK then answers 401 with ``WWW-Authenticate``
(``resource_metadata=``) and serves the RFC 9728 metadata route. Each token subject is its own
tenant on the server's Clipia key.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import httpx
from mcp.server.auth.provider import AccessToken

log = logging.getLogger(__name__)


class IntrospectionVerifier:
    """``TokenVerifier`` that asks an introspection endpoint whether a token is active."""

    def __init__(self, url: str, *, client_id: str | None = None, client_secret: str | None = None,
                 timeout: float = 5.0) -> None:
        self.url = url
        self._auth = (client_id, client_secret) if client_id and client_secret else None
        self._timeout = timeout

    def __repr__(self) -> str:
        return f"IntrospectionVerifier(url={self.url!r})"

    async def verify_token(self, token: str) -> AccessToken | None:
        try:
            async with httpx.AsyncClient(timeout=self._timeout) as http:
                resp = await http.post(self.url, data={"token": token}, auth=self._auth)  # type: ignore[arg-type]
            data: dict[str, Any] = resp.json() if resp.status_code == 200 else {}
        except (httpx.HTTPError, ValueError) as exc:
            log.warning("token introspection failed: %s", type(exc).__name__)
            return None
        if data.get("active") is not True:
            return None
        exp = data.get("exp")
        if isinstance(exp, int) and exp < time.time():
            return None
        scope = data.get("scope")
        return AccessToken(
            token=token,
            client_id=str(data.get("client_id", "")),
            scopes=scope.split() if isinstance(scope, str) else [],
            expires_at=exp if isinstance(exp, int) else None,
            resource=data.get("aud") if isinstance(data.get("aud"), str) else None,
            subject=data.get("sub") if isinstance(data.get("sub"), str) else None,
        )
