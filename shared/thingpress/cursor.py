"""Where reading a manifest resumes: the cursor a provider checkpoint stores.

A cursor stands *after* entry ``position``: ``offset`` is the byte of the object
where reading carries on (an S3 ranged GET ``Range: bytes=<offset>-``), ``line``
the number of lines the line formats have read before it (their reasons name
file lines). Parsers that can start there (``Vendor.read``) yield one cursor per
entry; a provider commits the cursor of the last entry it handled next to the
checkpoint position, so the next chunk starts there and never re-reads the prefix.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Cursor:
    """After entry ``position``: resume at byte ``offset`` (``line`` lines read before it)."""

    position: int
    offset: int
    line: int = 0

    def as_item(self) -> dict[str, int]:
        """The audit summary's ``cursor`` attribute (the position is the checkpoint itself)."""
        return {"offset": self.offset, "line": self.line}

    @classmethod
    def from_summary(cls, summary: dict[str, Any]) -> Cursor | None:
        """The stored cursor, or None: none stored (an old checkpoint, nothing committed yet, or a
        format that cannot be entered part-way: ``offset`` None)."""
        stored = summary.get("cursor")
        position = int(summary.get("checkpoint") or 0)
        if not isinstance(stored, dict) or stored.get("offset") is None:
            return None
        return cls(position, int(stored["offset"]), int(stored.get("line") or 0))
