"""Argument types and annotations shared by the tools (their JSON Schema is what clients see)."""

from __future__ import annotations

from typing import Annotated, Any

from mcp.types import ToolAnnotations
from pydantic import Field

from clipia_mcp.core import constants as C

RequestId = Annotated[
    str, Field(description="From submit_generation.", min_length=1, max_length=100)
]
ModelSlug = Annotated[
    str, Field(description="Slug from list_models, e.g. 'nano-banana-2'.",
               min_length=1, max_length=C.MAX_MODEL_SLUG_CHARS)
]
ModelInput = Annotated[
    dict[str, Any],
    Field(description="Model parameters, e.g. {\"prompt\": \"a red fox\"}; get_model lists them."),
]
IncludePreview = Annotated[bool | None, Field(
    description="Inline preview of the first image (default: server setting).")]

# Hints at their spec defaults are left out (openWorldHint true; destructiveHint means nothing when read-only).
SUBMIT = ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=False)
READ = ToolAnnotations(read_only_hint=True, idempotent_hint=True)
LOCAL_READ = ToolAnnotations(read_only_hint=True, idempotent_hint=True, open_world_hint=False)
DESTRUCTIVE = ToolAnnotations(read_only_hint=False, destructive_hint=True, idempotent_hint=True)
