"""Forwarded log lines: the client's level, the process's loggers only, and never a secret."""

from __future__ import annotations

import logging
import threading

import anyio
import anyio.lowlevel
import pytest

from clipia_mcp.core.redaction import register_secret
from clipia_mcp.mcp import logs

pytestmark = pytest.mark.anyio


async def test_forwarded_lines_are_redacted_and_filtered() -> None:
    secret = "s3cr3t-webhook-value-123"
    register_secret(secret)
    handler = logs.ClientLogHandler()
    logger = logging.getLogger("clipia_mcp.test_forwarding")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    # Any server built earlier in this process put a ClientLogHandler on the root logger: without this,
    # each line would be forwarded twice (the test depended on running before any in-process server).
    logger.propagate = False
    send, receive = anyio.create_memory_object_stream[dict](10)
    sink = logs._Sink(logs.LEVELS.index("info"), send, threading.get_ident(), anyio.lowlevel.current_token())
    token = logs._SINK.set(sink)
    try:
        logger.debug("below the client's level")
        logger.info("key clipia_live_abcdefghijkl and secret %s", secret)
        logger.error("failed")
    finally:
        logs._SINK.reset(token)
        logger.removeHandler(handler)
        logger.propagate = True
    logger.info("outside any request: not forwarded")
    send.close()
    got = [item async for item in receive]
    assert [g["level"] for g in got] == ["info", "error"]
    assert "clipia_live_abcdefghijkl" not in got[0]["data"] and secret not in got[0]["data"]
    assert "[REDACTED]" in got[0]["data"] and got[0]["logger"] == "clipia_mcp.test_forwarding"
