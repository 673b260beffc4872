"""Helpers shared by the adversarial suite (kept here so the suite does not depend on other test modules)."""

from __future__ import annotations

from pathlib import Path

import httpx2
from conftest import server_command, server_env
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

from clipia_mcp.sandbox import EmulatorServer

IMAGE = {"model": "nano-banana-2", "input": {"prompt": "tenant test"}}
TOKENS = ("tok-tenant-a-0001", "tok-tenant-b-0002")


def stdio(env: dict[str, str]) -> StdioServerParameters:
    cmd = server_command()
    return StdioServerParameters(command=cmd[0], args=cmd[1:], env=env)


def client_as(url: str, credential: str, header: str = "Authorization") -> Client:
    """An MCP client over Streamable HTTP sending ``credential`` on every request."""
    value = f"Bearer {credential}" if header == "Authorization" else credential
    return Client(streamable_http_client(url, http_client=httpx2.AsyncClient(headers={header: value}, timeout=30)))


def as_tenant(url: str, token: str) -> Client:
    return client_as(url, token)


def hosted_env(emu: EmulatorServer, tmp_path: Path, **extra: str) -> dict[str, str]:
    """Server environment without a server key (caller-key mode)."""
    env = server_env(emu, emu.new_key(), tmp_path, **extra)
    del env["CLIPIA_API_KEY"]
    return env


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")
