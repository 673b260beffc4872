"""A sandbox that behaves like a place: its identity and state kept in the data dir.

The embedded sandbox used to start empty with a random key, so the journal's rows (owned by a
hash of that key) vanished from ``list_requests`` on restart and a fresh process per call (as the
MCP Inspector starts) could not read back what it had just submitted. Here the sandbox keeps, in
``<data dir>/sandbox/emulator.json``:

* one stable key and account (so journal ownership is stable) and the balance and 30-day usage;
* every request with its scripted timeline in wall-clock time (so a request submitted before a
  restart keeps progressing and completes on time), and the idempotency records;
* the port it listened on, reused when free, so earlier media URLs keep working.

Writes are atomic (temporary file + rename) and merge with what is on disk, so two sandboxes
sharing a data dir one after the other (or briefly side by side) both keep their requests.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import secrets
from pathlib import Path
from typing import Any

from clipia_mcp.sandbox.state import Emulator, EmulatorError, Key, Request, Usage

log = logging.getLogger(__name__)
STATE_FILE = "emulator.json"
VERSION = 1
#: Requests kept in the file (newest by creation time); older ones are dropped on write.
MAX_REQUESTS = 5000


class SandboxPlace:
    """Load and keep the emulator's state under ``directory``."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.path = directory / STATE_FILE
        self.port: int | None = None
        self.key: Key | None = None
        self.emulator: Emulator | None = None

    def _read(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text("utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            log.warning("sandbox state at %s is unreadable (%s); starting afresh", self.path, exc)
            return {}
        return data if isinstance(data, dict) and data.get("version") == VERSION else {}

    def restore(self, emulator: Emulator, *, balance: int) -> Key:
        """Register the stable key (created on first use) and every kept request in ``emulator``."""
        data = self._read()
        self.emulator = emulator
        port = data.get("port")
        self.port = port if isinstance(port, int) and 0 < port < 65536 else None
        account = data.get("account") or {}
        acc = emulator.add_account(str(account.get("account_id") or f"acc_sandbox_{secrets.token_hex(4)}"),
                                   balance=int(account.get("balance", balance)))
        value = data.get("key") or "clipia_live_sandbox" + secrets.token_urlsafe(12).replace("-", "x")
        self.key = emulator.add_key(str(value), account=acc)
        usage = data.get("usage") or {}
        emulator.usage[self.key.value] = Usage(int(usage.get("requests", 0)), int(usage.get("credits_spent", 0)))
        now, wall = emulator.clock.now(), emulator.clock.wall()
        for raw in data.get("requests") or []:
            try:
                req = _request(emulator, raw, now - wall)
            except (KeyError, TypeError, ValueError, EmulatorError):
                continue  # a model that left the catalogue, or an entry from a newer format
            emulator.requests[req.request_id] = req
            if req.settled is None:
                emulator.unsettled.add(req.request_id)
        for key, idem, entry in data.get("idempotency") or []:
            if isinstance(entry, dict) and entry.get("expires_wall", 0) > wall:
                emulator.idempotency[(key, idem)] = {"fp": entry.get("fp"), "response": entry.get("response"),
                                                     "expires": entry["expires_wall"] + now - wall}
        emulator.on_change = self.save
        return self.key

    def save(self) -> None:
        """Write the state atomically, merged with the file (another sandbox may have added requests)."""
        emulator, key = self.emulator, self.key
        if emulator is None or key is None:
            return
        now, wall = emulator.clock.now(), emulator.clock.wall()
        ours = [_plain(r, wall - now) for r in emulator.requests.values() if r.key == key.value]
        theirs = [r for r in self._read().get("requests") or [] if isinstance(r, dict)]
        merged = {r.get("request_id"): r for r in theirs}
        merged.update({r["request_id"]: r for r in ours})
        kept = sorted(merged.values(), key=lambda r: float(r.get("created_wall") or 0))[-MAX_REQUESTS:]
        acc = emulator.accounts[key.account_id]
        usage = emulator.usage.get(key.value, Usage())
        idem = [[k, i, {"fp": e.get("fp"), "response": e.get("response"), "expires_wall": e["expires"] + wall - now}]
                for (k, i), e in emulator.idempotency.items() if k == key.value and e.get("response") is not None]
        state = {"version": VERSION, "key": key.value, "port": self.port,
                 "account": {"account_id": acc.account_id, "balance": acc.balance},
                 "usage": {"requests": usage.requests, "credits_spent": usage.credits_spent},
                 "requests": kept, "idempotency": idem}
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_name(f".{STATE_FILE}.{secrets.token_hex(4)}.tmp")
            tmp.write_text(json.dumps(state, separators=(",", ":")), "utf-8")
            os.replace(tmp, self.path)
        except OSError as exc:
            log.warning("cannot keep the sandbox state at %s: %s", self.path, exc)


def _plain(req: Request, to_wall: float) -> dict[str, Any]:
    data = dataclasses.asdict(req)
    data["model"] = req.model["slug"]
    data["created"] = req.created + to_wall  # monotonic -> wall, so another process can resume the timeline
    return data


def _request(emulator: Emulator, raw: dict[str, Any], to_mono: float) -> Request:
    fields = {f.name for f in dataclasses.fields(Request)}
    data = {k: v for k, v in raw.items() if k in fields}
    data["model"] = emulator.model(str(raw["model"]))
    data["created"] = float(raw["created"]) + to_mono
    return Request(**data)
