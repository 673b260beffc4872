"""Which authentication an HTTP transport runs with, decided from the settings alone.

Kept apart from the HTTP app and the auth middleware so that choosing a mode (the CLI does it for every
transport, stdio included) loads no HTTP client or server code.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Literal

from clipia_mcp.core.errors import ConfigError
from clipia_mcp.core.settings import Settings

AuthMode = Literal["none", "caller-key", "token", "oauth"]


def resolve_auth(settings: Settings, *, http: bool, sandbox_flag: bool = False) -> tuple[AuthMode, Settings]:
    """The auth mode (``auto`` decided) and the settings to run with (sandbox when there is no key).

    auto: OAuth if an introspection URL is set, token if tokens are set, caller-key if there is no
    server key and no sandbox was asked for, else none. stdio is always ``none``.
    """
    auth = settings.auth
    if auth == "auto":
        auth = "none" if not http else "oauth" if settings.oauth_introspection_url else "token" if settings.tokens \
            else "caller-key" if settings.api_key is None and not sandbox_flag and not settings.sandbox else "none"
    if auth == "oauth" and not (settings.oauth_introspection_url and settings.oauth_issuer_url
                                and settings.oauth_resource_url):
        raise ConfigError("--auth oauth needs CLIPIA_MCP_OAUTH_INTROSPECTION_URL, _ISSUER and _RESOURCE.")
    if auth == "token" and not settings.tokens:
        raise ConfigError("--auth token needs CLIPIA_MCP_TOKENS (comma-separated bearer tokens).")
    if auth != "caller-key" and (sandbox_flag or settings.api_key is None):
        settings = replace(settings, sandbox=True)
    if auth in ("token", "oauth") and settings.api_key is None and not settings.sandbox:
        raise ConfigError(f"--auth {auth} needs the server's CLIPIA_API_KEY (it pays for every tenant).")
    return auth, settings  # type: ignore[return-value]


def oauth_options(settings: Settings) -> dict[str, Any]:
    """The MCPServer arguments for OAuth resource-server mode (empty when OAuth is off)."""
    if not settings.oauth_introspection_url:
        return {}
    from mcp.server.auth.settings import AuthSettings

    from clipia_mcp.transports.oauth import IntrospectionVerifier

    return {
        "token_verifier": IntrospectionVerifier(
            settings.oauth_introspection_url, client_id=settings.oauth_client_id,
            client_secret=settings.oauth_client_secret, audience=settings.oauth_resource_url,
            issuer=settings.oauth_issuer_url),
        "auth": AuthSettings(issuer_url=settings.oauth_issuer_url,  # type: ignore[arg-type]
                             resource_server_url=settings.oauth_resource_url,  # type: ignore[arg-type]
                             required_scopes=list(settings.oauth_required_scopes) or None,
                             validate_token_resource=False),
    }
