"""Upstream answers as the providers return them: submit, status, result, estimate, account.

They parse raw JSON leniently (unknown fields ignored, optional fields may be absent); each
provider maps its own wire format onto these shapes.
"""

import math
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, ConfigDict, Field

from clipia_mcp.core.model import Model
from clipia_mcp.core.records import GenerationError
from clipia_mcp.core.redaction import redact

__all__ = ["AccountResponse", "EstimateResponse", "GenerationError", "InputWarning", "ResultResponse",
           "StatusResponse", "SubmitResponse"]


class _Lenient(Model):
    model_config = ConfigDict(extra="ignore")


#: Credits, queue positions: larger than any real one and still a 64-bit integer in every store.
_COUNT_MAX = 10**12


def count_or_none(value: Any) -> Any:
    """A count the API sent, or None when it is not one (a bool, negative, not finite, absurdly large):
    a wrong-shaped number is unknown, never a crash that loses the answer it came with (a paid submit)."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, str):
        value = value.strip()
        if not value.isdigit() or len(value) > 13:
            return None
        value = int(value)
    if isinstance(value, float):
        if not math.isfinite(value) or value != int(value):
            return None
        value = int(value)
    if not isinstance(value, int) or not 0 <= value <= _COUNT_MAX:
        return None
    return value


def percent_or_none(value: Any) -> Any:
    """A progress percentage clamped to 0..100, or None when it is not a number."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return int(min(max(value, 0), 100))


Count = Annotated[int | None, BeforeValidator(count_or_none)]
#: A status word as the API sent it (stored and shown; an echo of a credential in it is masked).
Status = Annotated[str, AfterValidator(redact)]
Percent = Annotated[int | None, BeforeValidator(percent_or_none)]


class InputWarning(_Lenient):
    """An ``input`` key the model will not apply (the request is still accepted)."""

    code: str = ""
    parameter: str = ""
    message: str = ""


class SubmitResponse(_Lenient):
    """``POST /v1/models/{model}``."""

    request_id: str
    status: Status
    queue_position: Count = None
    status_url: str | None = None
    response_url: str | None = None
    cost: Count = None
    warnings: list[InputWarning] = Field(default_factory=list)


class StatusResponse(_Lenient):
    """``GET /v1/requests/{id}/status``."""

    request_id: str
    status: Status
    queue_position: Count = None
    progress: Percent = None
    logs: list[Any] = Field(default_factory=list)




class ResultResponse(_Lenient):
    """``GET /v1/requests/{id}``; ``pending`` is True for a 202."""

    request_id: str
    status: Status
    model: str | None = None
    output: dict[str, Any] | None = None
    error: GenerationError | None = None
    cost: Count = None
    created_at: str | None = None
    completed_at: str | None = None
    pending: bool = False


class EstimateResponse(_Lenient):
    credits: int
    warnings: list[InputWarning] = Field(default_factory=list)


class AccountResponse(_Lenient):
    account_id: Annotated[str | None, AfterValidator(lambda v: redact(v) if v else v)] = None
    balance: dict[str, Any] = Field(default_factory=dict)
    usage_30d: dict[str, Any] = Field(default_factory=dict)
