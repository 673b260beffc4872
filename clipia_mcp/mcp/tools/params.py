"""Argument types and annotations shared by the tools (their JSON Schema is what clients see)."""

from __future__ import annotations

from typing import Annotated, Any

from mcp.types import ToolAnnotations
from pydantic import Field

from clipia_mcp.core import constants as C

RequestId = Annotated[
    str, Field(description="The request_id (UUID) returned by submit_generation.", min_length=1, max_length=100)
]
ModelSlug = Annotated[
    str, Field(description="Model slug, e.g. 'nano-banana-2' (image) or 'seedance-2-fast-t2v' (video).",
               min_length=1, max_length=C.MAX_MODEL_SLUG_CHARS)
]
ModelInput = Annotated[
    dict[str, Any],
    Field(description="Model parameters as a JSON object, e.g. {\"prompt\": \"a red fox in snow\", "
                      "\"aspect_ratio\": \"16:9\"}. get_model lists each model's parameters."),
]
IncludePreview = Annotated[bool | None, Field(
    description="Add an inline preview of the first image (default: the server's setting; on for desktop use).")]

SUBMIT = ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=True)
READ = ToolAnnotations(read_only_hint=True, idempotent_hint=True, open_world_hint=True, destructive_hint=False)
LOCAL_READ = ToolAnnotations(read_only_hint=True, idempotent_hint=True, open_world_hint=False, destructive_hint=False)
LOCAL_DESTRUCTIVE = ToolAnnotations(read_only_hint=False, destructive_hint=True, idempotent_hint=True,
                                    open_world_hint=False)
DESTRUCTIVE = ToolAnnotations(read_only_hint=False, destructive_hint=True, idempotent_hint=True, open_world_hint=True)
NewVariation = Annotated[bool, Field(
    description="True when the user asks for another version of the same prompt: skips the deduplication that "
                "otherwise returns the earlier identical request (accidental repeats stay deduplicated).")]
