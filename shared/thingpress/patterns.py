"""Validation patterns, each defined once. Match with ``fullmatch`` (no anchors here).

Shared by the functions, the stack configuration (``stacks/config.py``) and the CLI.
"""

from __future__ import annotations

import re

#: AWS IoT thing names (also thing type and thing group names): letters, digits, ':', '_', '-'.
THING_NAME_MAX = 128
THING_NAME_CHAR = re.compile(r"[a-zA-Z0-9:_-]")
THING_NAME = re.compile(rf"{THING_NAME_CHAR.pattern}{{1,{THING_NAME_MAX}}}")
#: an AWS IoT certificate id: lowercase hex SHA-256 of the certificate's DER.
FINGERPRINT = re.compile(r"[0-9a-f]{64}")
#: ``audit.manifest_id``: vendor, '-', 20 hex digits of the object version's digest.
MANIFEST_ID = re.compile(r"[a-z]+-[0-9a-f]{20}")
#: ``audit.now_iso``: UTC to the second.
TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")
