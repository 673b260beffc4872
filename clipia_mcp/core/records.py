"""Domain records: a request as we know it, a submit intent, a task, and the terminal statuses."""

from typing import Annotated, Any

from pydantic import AfterValidator, ConfigDict, Field

from clipia_mcp.core.model import Model
from clipia_mcp.core.redaction import redact

#: Statuses after which a request never changes again.
TERMINAL_STATUSES = frozenset({"COMPLETED", "FAILED", "CANCELED"})
STATUSES = ("IN_QUEUE", "IN_PROGRESS", "COMPLETED", "FAILED", "CANCELED")


class GenerationError(Model):
    """Why a generation failed (``result.error`` or a webhook's ``error``)."""

    model_config = ConfigDict(extra="ignore")

    code: Annotated[str, AfterValidator(redact)] = "GENERATION_FAILED"
    #: The API's words, redacted on the way in: they are stored and shown to the agent.
    message: Annotated[str, AfterValidator(redact)] = ""


class RequestRecord(Model):
    """A request as the journal (and the tracker) knows it."""

    request_id: str
    owner: str
    model: str | None = None
    input: dict[str, Any] | None = None
    idempotency_key: str | None = None
    status: str
    queue_position: int | None = None
    progress: int | None = None
    logs: list[Any] = Field(default_factory=list)
    cost: int | None = None
    output: dict[str, Any] | None = None
    error: GenerationError | None = None
    created_at: float
    updated_at: float
    completed_at: float | None = None

    @property
    def terminal(self) -> bool:
        """The status will never change again."""
        return self.status in TERMINAL_STATUSES

    @property
    def settled(self) -> bool:
        """Terminal, and a COMPLETED request has its output (a test key or webhook may report it without)."""
        return self.terminal and (self.status != "COMPLETED" or self.output is not None)


class Intent(Model):
    """A submit written down before the paid call; ``request_id`` is None until the API answered."""

    owner: str
    idempotency_key: str
    model: str
    input: dict[str, Any]
    input_hash: str
    webhook_url: str | None = None
    request_id: str | None = None
    created_at: float
    #: The estimate (credits) when spend limits asked for one; counts against limits until the request is known.
    cost: int | None = None


class TaskRecord(Model):
    """An MCP task (tasks extension) bound to one Clipia request."""

    task_id: str
    owner: str
    request_id: str
    created_at: float
    cancelled_at: float | None = None


class SpendRow(Model):
    """One day and model of an owner's journal: requests, credits charged (COMPLETED) and still reserved."""

    day: str  # YYYY-MM-DD, UTC, by creation time
    model: str
    requests: int
    failed: int = 0
    credits: int = 0
    reserved: int = 0


class SavedFile(Model):
    """An output file downloaded once into the output directory (``--output-dir``)."""

    owner: str
    request_id: str
    url: str
    path: str
    mime_type: str | None = None
    size_bytes: int | None = None
    sha256: str | None = None
    saved_at: float


class Forgotten(Model):
    """What :meth:`Store.forget` removed: the requests (with their intents and tasks) and the file records."""

    request_ids: list[str] = Field(default_factory=list)
    files: list[SavedFile] = Field(default_factory=list)
