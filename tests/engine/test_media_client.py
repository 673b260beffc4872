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
