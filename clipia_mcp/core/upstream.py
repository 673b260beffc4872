"""Upstream answers as the providers return them: submit, status, result, estimate, account.

They parse raw JSON leniently (unknown fields ignored, optional fields may be absent); each
provider maps its own wire format onto these shapes.
"""

from __future__ import annotations

from typing import Any

from pydantic import ConfigDict, Field

from clipia_mcp.core.model import Model
from clipia_mcp.core.records import GenerationError

__all__ = ["AccountResponse", "EstimateResponse", "GenerationError", "InputWarning", "ResultResponse",
           "StatusResponse", "SubmitResponse"]


class _Lenient(Model):
    model_config = ConfigDict(extra="ignore")


class InputWarning(_Lenient):
    """An ``input`` key the model will not apply (the request is still accepted)."""

    code: str = ""
    parameter: str = ""
    message: str = ""


class SubmitResponse(_Lenient):
    """``POST /v1/models/{model}``."""

    request_id: str
    status: str
    queue_position: int | None = None
    status_url: str | None = None
    response_url: str | None = None
    cost: int | None = None
    warnings: list[InputWarning] = Field(default_factory=list)


class StatusResponse(_Lenient):
    """``GET /v1/requests/{id}/status``."""

    request_id: str
    status: str
    queue_position: int | None = None
    progress: int | None = None
    logs: list[Any] = Field(default_factory=list)




class ResultResponse(_Lenient):
    """``GET /v1/requests/{id}``; ``pending`` is True for a 202."""

    request_id: str
    status: str
    model: str | None = None
    output: dict[str, Any] | None = None
    error: GenerationError | None = None
    cost: int | None = None
    created_at: str | None = None
    completed_at: str | None = None
    pending: bool = False


class EstimateResponse(_Lenient):
    credits: int
    warnings: list[InputWarning] = Field(default_factory=list)


class AccountResponse(_Lenient):
    account_id: str | None = None
    balance: dict[str, Any] = Field(default_factory=dict)
    usage_30d: dict[str, Any] = Field(default_factory=dict)
