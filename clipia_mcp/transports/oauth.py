"""OAuth resource-server mode: bearer tokens checked by RFC 7662 token introspection.

Plugged into the SDK as a ``TokenVerifier``; the SDK then answers 401 with ``WWW-Authenticate``
(``resource_metadata=``) and serves the RFC 9728 metadata route. Each token subject is its own
tenant on the server's Clipia key, so a token must name one (``sub`` or ``client_id``), be meant
for this server (``aud`` contains our resource URL when present) and come from our issuer. The
server authenticates to the introspection endpoint (HTTP Basic) when given client credentials,
and caches answers briefly (bounded) so a busy client costs one introspection per minute.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import OrderedDict
from typing import Any

import httpx
from mcp.server.auth.provider import AccessToken

from clipia_mcp.core.redaction import register_secret

log = logging.getLogger(__name__)
CACHE_SIZE = 2048
CACHE_TTL = 60.0


def _norm(url: str) -> str:
    return url.rstrip("/")


class IntrospectionVerifier:
    """``TokenVerifier`` that asks an introspection endpoint whether a token is active and ours."""

    def __init__(self, url: str, *, client_id: str | None = None, client_secret: str | None = None,
                 audience: str | None = None, issuer: str | None = None, timeout: float = 5.0) -> None:
        self.url = url
        self._auth = httpx.BasicAuth(client_id, client_secret) if client_id and client_secret else None
        register_secret(client_secret)
        self._audience = _norm(audience) if audience else None
        self._issuer = _norm(issuer) if issuer else None
        self._timeout = timeout
        self._cache: OrderedDict[str, tuple[float, AccessToken | None]] = OrderedDict()
        self.introspections = 0

    def __repr__(self) -> str:
        return f"IntrospectionVerifier(url={self.url!r})"

    async def verify_token(self, token: str) -> AccessToken | None:
        """The token's principal, or None (401) when it is inactive, expired, or not meant for us."""
        key = hashlib.sha256(token.encode()).hexdigest()
        now = time.time()
        hit = self._cache.get(key)
        if hit is not None and hit[0] > now:
            self._cache.move_to_end(key)
            return hit[1]
        result = await self._introspect(token)
        expires = now + CACHE_TTL
        if result is not None and result.expires_at is not None:
            expires = min(expires, float(result.expires_at))
        self._cache[key] = (expires, result)
        while len(self._cache) > CACHE_SIZE:
            self._cache.popitem(last=False)
        return result

    async def _introspect(self, token: str) -> AccessToken | None:
        self.introspections += 1
        try:
            async with httpx.AsyncClient(timeout=self._timeout) as http:
                resp = await http.post(self.url, data={"token": token}, auth=self._auth or httpx.USE_CLIENT_DEFAULT)
            data: Any = resp.json() if resp.status_code == 200 else {}
        except (httpx.HTTPError, ValueError) as exc:
            log.warning("token introspection failed: %s", type(exc).__name__)
            return None
        if not isinstance(data, dict) or data.get("active") is not True:
            return None
        exp = data.get("exp")
        if isinstance(exp, int) and exp < time.time():
            return None
        if not self._meant_for_us(data):
            return None
        subject = data.get("sub") if isinstance(data.get("sub"), str) and data.get("sub") else None
        raw_client = data.get("client_id")
        client_id = raw_client if isinstance(raw_client, str) else ""
        if not subject and not client_id:
            log.info("token without sub or client_id refused (it would name no tenant)")
            return None
        scope = data.get("scope")
        aud = data.get("aud")
        return AccessToken(
            token=token,
            client_id=client_id,
            scopes=scope.split() if isinstance(scope, str) else [],
            expires_at=exp if isinstance(exp, int) else None,
            resource=aud if isinstance(aud, str) else None,
            subject=subject,
        )

    def _meant_for_us(self, data: dict[str, Any]) -> bool:
        if self._issuer is not None and isinstance(data.get("iss"), str) and _norm(data["iss"]) != self._issuer:
            log.info("token from another issuer refused")
            return False
        aud = data.get("aud")
        if self._audience is not None and aud is not None:
            audiences = [aud] if isinstance(aud, str) else [a for a in aud if isinstance(a, str)] \
                if isinstance(aud, list) else []
            if self._audience not in {_norm(a) for a in audiences}:
                log.info("token for another resource refused")
                return False
        return True
