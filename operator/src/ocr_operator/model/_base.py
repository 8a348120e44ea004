"""Shared pydantic configuration of the resource model: camelCase on the wire."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel


class WireModel(BaseModel):
    """Base of every spec/status model: camelCase aliases, snake_case in Python."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="ignore",
        frozen=True,
        use_enum_values=False,
    )

    def wire(self) -> dict[str, object]:
        """The JSON-ready dict as Kubernetes stores it (aliases, no unset optionals)."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)
