"""The base of this package's pydantic models."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Model(BaseModel):
    """A pydantic model whose validator and serializer are built on first use, not when its module is imported.

    Startup then pays only for the models its first answers need (the tool output models' schemas ship
    precomputed in ``mcp/tool_schemas.json``).
    """

    model_config = ConfigDict(defer_build=True)
