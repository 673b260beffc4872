"""engine/media_client: output files are fetched only from public https hosts (every redirect hop checked),
or from the API's own hosts; a refused URL fails like an unreachable one, before any connection."""

from __future__ import annotations

import socket
from typing import Any

import anyio
import httpx
import pytest

from clipia_mcp.engine import media_client
from clipia_mcp.engine.media_client import PublicOnly

pytestmark = pytest.mark.anyio
PUBLIC, PRIVATE = "93.184.216.34", "10.0.0.7"
DNS = {"cdn.example.com": PUBLIC, "rebound.example.com": PRIVATE}


@pytest.fixture(autouse=True)
def fake_dns(monkeypatch: pytest.MonkeyPatch) -> None:
    async def getaddrinfo(host: str, port: int, **_: Any) -> list[Any]:
        if host not in DNS:
            raise socket.gaierror("unknown")
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (DNS[host], port))]

    monkeypatch.setattr(anyio, "getaddrinfo", getaddrinfo)


def client(seen: list[str]) -> httpx.AsyncClient:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        if request.url.path == "/hop":
            return httpx.Response(302, headers={"location": request.url.params["to"]})
        return httpx.Response(200, content=b"png", headers={"content-type": "image/png"})

    return httpx.AsyncClient(transport=PublicOnly(httpx.MockTransport(handler), frozenset({"127.0.0.1"})),  # type: ignore[arg-type]
                             follow_redirects=True)


@pytest.mark.parametrize("url", [
    "http://cdn.example.com/a.png",  # not https
    "https://127.0.0.2/secret.png", "https://169.254.169.254/latest/meta-data/x.png", "https://[::1]/x.png",
    "https://0x7f000001/x.png", "https://localhost/x.png",
    "https://rebound.example.com/x.png",  # a public-looking name resolving to a private address
    "https://user:hunter2@cdn.example.com/x.png",  # credentials
    "https://cdn.example.com/hop?to=http://169.254.169.254/x.png",  # a redirect to a private host
    "https://cdn.example.com/hop?to=https://10.1.2.3/x.png",
])
async def test_non_public_urls_are_never_fetched(url: str) -> None:
    seen: list[str] = []
    async with client(seen) as http:
        with pytest.raises(httpx.ConnectError, match="not fetched"):
            await http.get(url)
    assert all(s.startswith("https://cdn.example.com/hop") for s in seen), seen  # only the public first hop


async def test_public_https_and_the_apis_own_host_are_fetched() -> None:
    seen: list[str] = []
    async with client(seen) as http:
        assert (await http.get("https://cdn.example.com/a.png")).status_code == 200
        assert (await http.get("http://127.0.0.1:8787/media/a.png")).status_code == 200  # the emulator
        assert (await http.get("https://cdn.example.com/hop?to=https://cdn.example.com/b.png")).status_code == 200
    assert len(seen) == 4


def test_the_default_client_has_the_guard() -> None:
    http = media_client.MediaClient(5.0, trusted_hosts=["127.0.0.1"]).http
    assert isinstance(http._transport, PublicOnly)  # noqa: SLF001


async def test_a_name_that_does_not_resolve_is_refused() -> None:
    async with client([]) as http:
        with pytest.raises(httpx.ConnectError, match="does not resolve"):
            await http.get("https://unknown.example.com/x.png")


class _Stream:
    def __init__(self, peer: str) -> None:
        self.peer = peer

    def get_extra_info(self, name: str) -> Any:
        return (self.peer, 443) if name == "server_addr" else None


@pytest.mark.parametrize(("peer", "fetched"), [(PRIVATE, False), (PUBLIC, True)])
async def test_an_answer_from_a_private_address_is_refused_before_its_body(peer: str, fetched: bool) -> None:
    """DNS rebinding: the name was public when checked, the connection reached a private address."""
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b"secret", extensions={"network_stream": _Stream(peer)})

    guard = PublicOnly(httpx.MockTransport(handler), frozenset())  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=guard) as http:  # type: ignore[arg-type]
        if fetched:
            assert (await http.get("https://cdn.example.com/a.png")).content == b"secret"
        else:
            with pytest.raises(httpx.ConnectError, match="private address"):
                await http.get("https://cdn.example.com/a.png")


def test_environment_proxies_still_apply_and_are_guarded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    http = media_client.MediaClient(5.0).http
    mounts = list(http._mounts.values())  # noqa: SLF001
    assert mounts and all(isinstance(t, PublicOnly) and not t.check_peer for t in mounts)
