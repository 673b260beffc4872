"""Tool output models: each doubles as the tool's MCP ``outputSchema``."""

from typing import Any

from pydantic import Field

from clipia_mcp.core.media import MediaFile
from clipia_mcp.core.model import Model
from clipia_mcp.core.records import GenerationError
from clipia_mcp.core.upstream import InputWarning


class RequestView(Model):
    """A generation request as this server knows it: status, progress and (when done) its files."""

    request_id: str = Field(description="Clipia request id (UUID); the handle for every later call.")
    status: str = Field(description="IN_QUEUE, IN_PROGRESS, COMPLETED, FAILED or CANCELED.")
    done: bool = Field(description="True once the status is terminal (COMPLETED, FAILED, CANCELED).")
    model: str | None = None
    queue_position: int | None = None
    progress: int | None = Field(default=None, description="0-100 while IN_PROGRESS.")
    logs: list[dict[str, Any]] = Field(default_factory=list, description="Recent log entries (opaque objects).")
    cost: int | None = Field(
        default=None, description="Credits: reserved while running, charged when COMPLETED, 0 if FAILED/CANCELED."
    )
    test_key: bool | None = Field(default=None, description="True on a clipia_test_ key or the sandbox: nothing "
                                                            "is ever charged, cost is what a live key would pay.")
    media: list[MediaFile] = Field(default_factory=list, description="Output files (COMPLETED only).")
    output: dict[str, Any] | None = Field(default=None, description="The raw API output object.")
    error: GenerationError | None = None
    created_at: str | None = None
    completed_at: str | None = None
    resource_uri: str
    next_step: str


class SubmitView(Model):
    """What ``submit_generation`` returns at once."""

    request_id: str
    status: str
    model: str
    queue_position: int | None = None
    cost: int | None = Field(default=None, description="Credits reserved (price fixed at submit).")
    test_key: bool | None = Field(default=None, description="True on a clipia_test_ key or the sandbox: nothing "
                                                            "is ever charged.")
    warnings: list[InputWarning] = Field(default_factory=list)
    deduplicated: bool = Field(
        default=False, description="True when an earlier identical submit was returned instead of charging again."
    )
    idempotency_key: str
    resource_uri: str
    next_step: str


class ModelSummary(Model):
    slug: str
    type: str | None = None
    name: str | None = None
    description: str | None = None
    capabilities: list[str] = Field(default_factory=list)
    credits: int | None = Field(default=None, description="Price at default parameters (None: call estimate_cost).")
    available: bool = True
    estimate_required: bool = False


class ModelList(Model):
    count: int
    models: list[ModelSummary]


class ModelDetail(Model):
    slug: str
    type: str | None = None
    name: str | None = None
    description: str | None = None
    capabilities: list[str] = Field(default_factory=list)
    pricing: dict[str, Any] = Field(default_factory=dict)
    input_schema: dict[str, Any] | None = None
    text_limits: dict[str, Any] | None = None


class EstimateView(Model):
    model: str
    credits: int
    warnings: list[InputWarning] = Field(default_factory=list)
    balance: int | None = Field(default=None, description="Current balance, when it could be read.")
    affordable: bool | None = None
    test_key: bool | None = Field(default=None, description="True on a clipia_test_ key or the sandbox: the "
                                                            "credits are what a live key would pay; none are charged.")


class SpendLimitsView(Model):
    max_cost_per_call: int | None = Field(default=None, description="Most credits one generation may cost.")
    remaining_today: int | None = Field(default=None, description="Credits this tenant may still spend today (UTC).")
    remaining_this_month: int | None = Field(default=None, description="Credits left this month (UTC).")


class BalanceView(Model):
    account_id: str | None = None
    credits: int | None = None
    usage_30d_requests: int | None = None
    usage_30d_credits_spent: int | None = None
    sandbox: bool = Field(description="True when the key is a clipia_test_ key or the embedded sandbox is used.")
    spend_limits: SpendLimitsView | None = Field(default=None, description="The operator's spend limits for this "
                                                                           "caller, when any are set.")


class RequestSummary(Model):
    request_id: str
    model: str
    status: str
    cost: int | None = None
    prompt: str | None = Field(default=None, description="First 200 characters of input.prompt, if any.")
    created_at: str
    updated_at: str
    resource_uri: str


class RequestListView(Model):
    count: int
    requests: list[RequestSummary]


class DeleteView(Model):
    request_id: str
    deleted: bool
    deleted_input_video: bool


class SpendDay(Model):
    day: str = Field(description="UTC date (by when the request was created).")
    requests: int
    credits: int = Field(description="Credits charged (completed requests).")


class SpendModel(Model):
    model: str
    requests: int
    failed: int
    credits: int


class SpendView(Model):
    """Spending from this server's journal, per day and per model, beside the account's own 30-day usage."""

    since: str
    until: str
    requests: int
    credits: int = Field(description="Credits charged for completed requests in the range.")
    reserved: int = Field(description="Credits reserved by requests still running.")
    by_day: list[SpendDay]
    by_model: list[SpendModel]
    balance: int | None = None
    usage_30d_requests: int | None = Field(default=None, description="The account's own count (all clients).")
    usage_30d_credits_spent: int | None = None
    test_key: bool | None = Field(default=None, description="True on a test key or the sandbox: nothing is charged.")


class ForgetView(Model):
    """What ``forget`` removed from this server."""

    forgotten: int = Field(description="Finished requests removed (prompt, result, tasks, file records).")
    request_ids: list[str] = Field(default_factory=list, description="The first 50 of them.")
    files_deleted: int = 0
    note: str


class ErrorView(Model):
    """The error object of an ``isError`` result (in ``_meta["io.clipia/error"]``)."""

    code: str = Field(description="Stable machine code (see the README's list of error codes).")
    message: str
    http_status: int | None = None
    retry_after: float | None = Field(default=None, description="Seconds to wait before calling again.")
    request_id: str | None = None
    type: str | None = Field(default=None, description="The API envelope's error type, when the API sent one.")
    remaining_credits: int | None = Field(default=None, description="spend_limit_exceeded: what the limit still "
                                                                   "allows.")
    limit: str | None = Field(default=None, description="spend_limit_exceeded: per_call, daily or monthly.")
