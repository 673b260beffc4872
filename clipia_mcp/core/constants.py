"""Every timeout, interval and limit in one place.

Values are in seconds unless the name says otherwise. Runtime overrides live on
:class:`clipia_mcp.core.settings.Settings`; these are the defaults it starts from.
"""

from __future__ import annotations

DEFAULT_BASE_URL = "https://api.clipia.ai"
LIVE_KEY_PREFIX = "clipia_live_"
TEST_KEY_PREFIX = "clipia_test_"

# HTTP client
HTTP_TIMEOUT = 30.0
HTTP_CONNECT_TIMEOUT = 10.0

# Retry policy (API layer)
RETRY_MAX_ATTEMPTS = 4  # first try + 3 retries
RETRY_BASE_DELAY = 0.5
RETRY_MAX_DELAY = 8.0
RETRY_AFTER_CAP = 30.0  # never sleep longer than this on a server Retry-After
TRANSIENT_HTTP_STATUSES = frozenset({429, 500, 502, 503, 504})

# Polling (tracker)
POLL_MIN_INTERVAL = 1.0
POLL_MAX_INTERVAL = 10.0
POLL_JITTER = 0.2  # +/- fraction applied to every interval
POLL_BUDGET_RPM = 60  # share of the account's rate limit the poller may use
POLL_MAX_CONSECUTIVE_ERRORS = 20
#: With a verified webhook receiver, a request is polled only this long after its last look (doubling).
WEBHOOK_FALLBACK_INTERVAL = 300.0
#: A webhook that carried the output is confirmed by one result fetch this long after it woke the waiters.
CONFIRM_DELAY = 1.0
LEASE_TTL = 8.0  # seconds a replica's poll lease lasts unless renewed (replicas on PostgreSQL)
TERMINAL_CACHE = 500  # finished requests kept in memory; older ones are re-read from the journal

# Waiting inside a tool call (hosts commonly time a tool call out at 60 s)
WAIT_DEFAULT = 25.0
CALL_DEADLINE = 50.0  # one tool call, retries and waits included
SUBMIT_QUEUE_TTL = 600.0  # a submit queued for admission (rate limit, pool) is dropped unsent after this
NO_PROGRESS_WAIT_CAP = 20.0  # without a progress token nothing keeps the host's timer alive
#: Clients known to reset their tool timeout on progress notifications (lower-case name prefixes).
LONG_WAIT_CLIENTS = ("claude-code", "mcp-inspector", "inspector-client")
HEARTBEAT_INTERVAL = 10.0

# Input bounds
MAX_PROMPT_CHARS = 20_000
MAX_INPUT_BYTES = 64 * 1024
MAX_INPUT_DEPTH = 8
MAX_MODEL_SLUG_CHARS = 128
MAX_IDEMPOTENCY_KEY_CHARS = 255
MAX_LIST_LIMIT = 200

# The model catalogue changes rarely: list_models answers from memory for this long
CATALOGUE_TTL = 300.0

# Results
PREVIEW_MAX_BYTES = 256 * 1024
PREVIEW_FETCH_TIMEOUT = 5.0

# The largest API answer read (catalogues are the biggest, ~100 KB): anything past it is unreadable.
MAX_API_ANSWER_BYTES = 8 * 1024 * 1024
# Output files one request may list (links, previews, saved copies): far above any real generation.
MAX_OUTPUT_FILES = 32
#: Bytes (UTF-8) of compact JSON a request's raw ``output`` may take in a tool result; a larger one with media
#: files is left out (the files are listed, the request's resource holds it whole): context the model pays for.
MAX_INLINE_OUTPUT = 16 * 1024
# Saving outputs locally (--output-dir): per-file caps by kind, and how long one download may take.
SAVE_MAX_BYTES = {"image": 64 * 1024 * 1024, "audio": 256 * 1024 * 1024, "video": 2 * 1024 * 1024 * 1024,
                  "file": 256 * 1024 * 1024}
SAVE_FETCH_TIMEOUT = 120.0
# How long one answer waits for its files to be saved (the download goes on in the background after),
# and how much of a call's deadline stays free for building and sending the answer after media work.
SAVE_WAIT_IN_CALL = 5.0
# Downloads of saved outputs running at once (each request's files one after another).
SAVE_CONCURRENCY = 4
ANSWER_MARGIN = 0.5

# Cost confirmation: `generate` asks the user before spending more than this (or more than the balance)
CONFIRM_ABOVE_CREDITS = 100

# Tasks extension
TASK_TTL_MS = 24 * 3600 * 1000

# Submit dedup window when the agent passes no idempotency key
DEDUP_WINDOW = 120.0

# Hosted caller-key mode: confirmed keys kept (LRU), refusals remembered, new identities per second (burst)
CALLER_POOL_SIZE = 1000
CALLER_REFUSED_CACHE = 10_000
CALLER_REFUSED_TTL = 60.0
NEW_CALLERS_PER_SECOND = 5.0
NEW_CALLERS_BURST = 20

# HTTP server: a request's headers and body must arrive within this (slow-loris clients are cut);
# Streamable HTTP sessions are bounded in number and closed after this long without a request.
REQUEST_READ_TIMEOUT = 15.0
# Idle keep-alive connections are kept longer than any common client or proxy reuses one (httpx 5 s, undici
# 4 s, nginx upstream keepalive 60 s): a server that closes first races the client's next request on it,
# which the client sees as a dropped connection (ReadError) on a request it may not safely resend.
HTTP_KEEP_ALIVE_TIMEOUT = 75
MAX_HTTP_SESSIONS = 1000
# One caller's share of them: a tenant opening sessions in a loop must not lock the others out.
MAX_HTTP_SESSIONS_PER_CALLER = 100
SESSION_IDLE_TIMEOUT = 600.0

# Garbage collector (engine/heap.py): collections walk fewer, larger young generations. With Python's
# default (700, 10, 10) a fan-out of 1,000 webhook answers ran ~50 collections, gen-2 ones 20-45 ms each.
GC_THRESHOLDS = (50_000, 20, 10)
#: Submits without an idempotency_key told submit_pending, remembered so their retry gets the same request.
TOLD_PENDING_MAX = 10_000
