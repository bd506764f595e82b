"""Helpers the provider tests import (a module of its own: ``conftest`` names collide across folders)."""

from __future__ import annotations

import base64


def generated_manifest(lines: list[bytes]) -> bytes:
    """A generated manifest: each PEM as one standard-base64 line; ``bytes`` lines are kept raw."""
    return b"".join(base64.b64encode(line) + b"\n" if line.startswith(b"-----BEGIN") else line + b"\n"
                    for line in lines)
