"""Media that stays: finished outputs downloaded once into the output directory.

Clipia output URLs have no documented lifetime (contract §5.3: "no documented expiry"), so a
desktop user's files are saved locally when ``--output-dir`` / ``CLIPIA_MCP_OUTPUT_DIR`` is on
(the default for stdio). Each file is fetched once per request — streamed, capped in size by
kind, refused unless the ``Content-Type`` fits the kind, written to a temporary file and moved
into place atomically — and recorded in the store (:meth:`Store.add_file`), so later results,
restarts and ``forget`` find it.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import re
import secrets
import time
from pathlib import Path

import anyio
from anyio.abc import TaskGroup

from clipia_mcp.core import constants as C
from clipia_mcp.core.media import MediaFile, extract_media
from clipia_mcp.core.records import RequestRecord, SavedFile
from clipia_mcp.core.settings import Settings
from clipia_mcp.engine.media_client import MediaClient
from clipia_mcp.store.base import Store

log = logging.getLogger(__name__)
_EXT_BY_MIME = {"image/png": ".png", "image/jpeg": ".jpg", "image/webp": ".webp", "image/gif": ".gif",
                "video/mp4": ".mp4", "video/webm": ".webm", "video/quicktime": ".mov", "audio/mpeg": ".mp3",
                "audio/wav": ".wav", "audio/x-wav": ".wav", "audio/ogg": ".ogg", "audio/mp4": ".m4a"}
_GENERIC_TYPES = ("application/octet-stream", "binary/octet-stream")


class SaveRefused(Exception):
    """A download that must not be kept (wrong type, too large, HTTP error)."""


class OutputSaver:
    """Downloads a finished request's files once and records them; off when ``output_dir`` is None."""

    def __init__(self, settings: Settings, store: Store, media: MediaClient) -> None:
        self.directory = settings.output_dir if settings.save_outputs else None
        self.store = store
        self.media = media
        self._running: dict[tuple[str, str], anyio.Event] = {}
        self._limiter = anyio.CapacityLimiter(C.SAVE_CONCURRENCY)
        self._tg: TaskGroup | None = None

    def bind(self, tg: TaskGroup) -> None:
        """Download in ``tg`` from now on: a slow file finishes in the background while answers go out."""
        self._tg = tg

    @property
    def enabled(self) -> bool:
        return self.directory is not None

    async def saved(self, record: RequestRecord, budget: float = math.inf) -> dict[str, SavedFile]:
        """The request's saved files by URL, after waiting at most ``budget`` seconds for the missing ones to
        download (when saving is on). A download still running then goes on in the background (once bound)
        and shows in a later answer; the answer itself is never held up past its budget."""
        if record.status != "COMPLETED" or record.output is None:
            return {}
        files = {f.url: f for f in await self.store.files_for(record.owner, record.request_id)}
        if self.directory is None or all(m.url in files for m in extract_media(record.output)):
            return files
        key = (record.owner, record.request_id)
        done = self._running.get(key)
        with anyio.move_on_after(budget):
            if done is None:  # one download per request, however many callers ask at once
                done = self._running[key] = anyio.Event()
                if self._tg is not None:
                    self._tg.start_soon(self._save_missing, record, done)
                else:
                    await self._save_missing(record, done)
            await done.wait()
        return {f.url: f for f in await self.store.files_for(record.owner, record.request_id)}

    async def _save_missing(self, record: RequestRecord, done: anyio.Event) -> None:
        try:
            async with self._limiter:  # a burst of finished requests must not start a download each at once
                files = {f.url: f for f in await self.store.files_for(record.owner, record.request_id)}
                for index, m in enumerate(extract_media(record.output)):
                    if m.url in files:
                        continue
                    try:
                        saved = await self._download(record, m, index)
                    except Exception as exc:  # noqa: BLE001 - a URL httpx cannot even parse is skipped too
                        log.warning("not saving %s output %d of %s: %s", m.kind, index, record.request_id,
                                    str(exc) or type(exc).__name__)
                        continue
                    await self.store.add_file(saved)
                    files[m.url] = saved
        except Exception:  # noqa: BLE001 - in the engine's task group: a failure here must not end the server
            log.exception("saving the outputs of %s failed", record.request_id)
        finally:
            self._running.pop((record.owner, record.request_id), None)
            done.set()

    async def _download(self, record: RequestRecord, m: MediaFile, index: int) -> SavedFile:
        directory = self.directory
        assert directory is not None
        cap = C.SAVE_MAX_BYTES.get(m.kind, C.SAVE_MAX_BYTES["file"])
        await anyio.to_thread.run_sync(lambda: directory.mkdir(parents=True, exist_ok=True))
        with anyio.fail_after(C.SAVE_FETCH_TIMEOUT):
            async with self.media.http.stream("GET", m.url) as resp:
                if resp.status_code != 200:
                    raise SaveRefused(f"HTTP {resp.status_code}")
                ctype = resp.headers.get("content-type", "").split(";")[0].strip().lower()
                _check_type(m, ctype)
                declared = resp.headers.get("content-length")
                if declared and declared.isdigit() and int(declared) > cap:
                    raise SaveRefused(f"{declared} bytes is over the {cap}-byte cap for {m.kind} files")
                final = self._target(record, m, index, ctype)
                part = final.with_name(f".{final.name}.{secrets.token_hex(4)}.part")
                digest, size = hashlib.sha256(), 0
                try:
                    async with await anyio.open_file(part, "wb") as out:
                        async for chunk in resp.aiter_bytes():
                            size += len(chunk)
                            if size > cap:
                                raise SaveRefused(f"over the {cap}-byte cap for {m.kind} files")
                            digest.update(chunk)
                            await out.write(chunk)
                        await out.flush()
                        await anyio.to_thread.run_sync(os.fsync, out.wrapped.fileno())
                    await anyio.to_thread.run_sync(os.replace, part, final)
                except BaseException:
                    await anyio.to_thread.run_sync(lambda: part.unlink(missing_ok=True))
                    raise
        return SavedFile(owner=record.owner, request_id=record.request_id, url=m.url, path=str(final),
                         mime_type=ctype if ctype not in _GENERIC_TYPES else m.mime_type, size_bytes=size,
                         sha256=digest.hexdigest(), saved_at=time.time())

    def _target(self, record: RequestRecord, m: MediaFile, index: int, ctype: str) -> Path:
        """``<date>_<model>_<request id prefix>[_<n>].<ext>``, never overwriting another file."""
        assert self.directory is not None
        day = time.strftime("%Y-%m-%d", time.localtime(record.created_at))
        model = re.sub(r"[^A-Za-z0-9._-]+", "-", record.model or "clipia").strip(".-") or "clipia"
        ext = Path(m.name).suffix.lower() or _EXT_BY_MIME.get(ctype) or _EXT_BY_MIME.get(m.mime_type, "")
        if not re.fullmatch(r"\.[a-z0-9]{1,5}", ext):
            ext = _EXT_BY_MIME.get(m.mime_type, ".bin")
        stem = f"{day}_{model}_{record.request_id[:8]}" + (f"_{index + 1}" if index else "")
        target = self.directory / f"{stem}{ext}"
        n = 2
        while target.exists():
            target = self.directory / f"{stem}-{n}{ext}"
            n += 1
        return target


def _check_type(m: MediaFile, ctype: str) -> None:
    """The server's Content-Type must fit the kind (an HTML error page is never saved as a video)."""
    if m.kind == "file" or ctype.startswith(f"{m.kind}/"):
        return
    if ctype in _GENERIC_TYPES and m.mime_type.startswith(f"{m.kind}/"):
        return  # some CDNs serve everything as octet-stream; the URL's extension says what it is
    raise SaveRefused(f"Content-Type {ctype or 'missing'} is not a {m.kind}")
