"""Argument types and annotations shared by the tools (their JSON Schema is what clients see)."""

from __future__ import annotations

from typing import Annotated, Any

from mcp.types import ToolAnnotations
from pydantic import Field

from clipia_mcp.core import constants as C

RequestId = Annotated[str, Field(min_length=1, max_length=100)]
ModelSlug = Annotated[
    str, Field(description="Slug from list_models.",
               min_length=1, max_length=C.MAX_MODEL_SLUG_CHARS)
]
ModelInput = Annotated[
    dict[str, Any],
    Field(description="Parameters, e.g. {\"prompt\": \"a fox\"}; see get_model."),
]
IncludePreview = Annotated[bool | None, Field(
    description="Inline image preview (default: server setting).")]

# Hints at their spec defaults are left out (readOnlyHint false, openWorldHint true); destructiveHint and
# idempotentHint mean nothing on a read-only tool. Paid submits say both explicitly.
SUBMIT = ToolAnnotations(destructive_hint=False, idempotent_hint=False)
READ = ToolAnnotations(read_only_hint=True)
LOCAL_READ = ToolAnnotations(read_only_hint=True, open_world_hint=False)
DESTRUCTIVE = ToolAnnotations(destructive_hint=True, idempotent_hint=True)
LOCAL_DESTRUCTIVE = ToolAnnotations(destructive_hint=True, idempotent_hint=True, open_world_hint=False)
NewVariation = Annotated[bool, Field(
    description="Make a new version of an identical input (no deduplication).")]
