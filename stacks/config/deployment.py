"""Where a deployment goes and what marks it: environment suffix, region, target, Terraform state, tags.

Read first: every resource name derives from the suffix and region (``stacks.naming.Names``), the
IoT reader names the created policy and group from them, and a ``local`` target changes other
concerns' defaults (the functions' timeouts). The tags sit here because they mark the deployment,
beside the ``project`` and ``environment`` tags the stack puts on every resource itself.

=====================================  ===========================================================
variable                               meaning (default)
=====================================  ===========================================================
THINGPRESS_ENV / context ``env``       environment suffix, ``^[a-z][a-z0-9]{1,11}$`` (``local``: naming.DEFAULT_ENV)
THINGPRESS_REGION                      AWS region (``us-east-1``)
THINGPRESS_TARGET                      ``aws`` or ``local`` (an AWS emulator) (``aws``)
THINGPRESS_ENDPOINT                    emulator URL for ``local`` (``http://127.0.0.1:5000``)
THINGPRESS_BACKEND                     ``s3`` or ``local`` state (``s3`` for aws when a state bucket
                                       is set, else ``local``: state in build/state/, never committed)
THINGPRESS_STATE_BUCKET                S3 state bucket (required for the s3 backend)
THINGPRESS_STATE_REGION                state bucket region (the region)
THINGPRESS_TAGS                        JSON {key: value} added to every resource
=====================================  ===========================================================
"""

from __future__ import annotations

import json
import re
from typing import Any

from stacks.config.reader import Reader
from stacks.naming import DEFAULT_ENV, REGION_PATTERN, REGION_RE, SUFFIX_PATTERN, SUFFIX_RE, Names

DEFAULT_ENDPOINT = "http://127.0.0.1:5000"
TARGETS = ("aws", "local")
BACKENDS = ("s3", "local")
_TAG_KEY = re.compile(r"^[\w .:/=+\-@]{1,128}$")


def read(r: Reader, context_env: str | None) -> dict[str, Any]:
    """``suffix``, ``region``, ``target``, ``endpoint``, ``backend``, ``state_bucket``, ``state_region``."""
    suffix, region = _suffix_and_region(r, context_env)
    return {"suffix": suffix, "region": region, **_target_and_state(r, region)}


def _suffix_and_region(r: Reader, context_env: str | None) -> tuple[str, str]:
    env_setting = r.get("THINGPRESS_ENV")
    suffix = env_setting or (context_env or "").strip() or DEFAULT_ENV
    suffix_source = "THINGPRESS_ENV" if env_setting else ("cdktf context env" if context_env else "THINGPRESS_ENV")
    suffix_ok = bool(SUFFIX_RE.match(suffix))
    if not suffix_ok:
        r.errors.append(f"{suffix_source}: environment suffix {suffix!r} must match {SUFFIX_PATTERN} "
                        "(a lower-case letter, then 1-11 lower-case letters or digits, e.g. dev, pr1234)")
    region = r.get("THINGPRESS_REGION", "us-east-1")
    region_ok = bool(REGION_RE.match(region))
    if not region_ok:
        r.errors.append(f"THINGPRESS_REGION: {region!r} is not an AWS region name ({REGION_PATTERN})")
    if suffix_ok and region_ok:
        r.errors += [f"THINGPRESS_ENV: {msg}" for msg in Names(suffix, region).check()]
    return suffix, region


def _target_and_state(r: Reader, region: str) -> dict[str, Any]:
    target = r.choice("THINGPRESS_TARGET", TARGETS, "aws")
    endpoint = ""
    if target == "local":
        endpoint = r.get("THINGPRESS_ENDPOINT", DEFAULT_ENDPOINT).rstrip("/")
        if not re.match(r"^https?://[^\s/]+$", endpoint):
            r.errors.append(f"THINGPRESS_ENDPOINT: must be an http(s)://host[:port] URL, got {endpoint!r}")
    elif r.get("THINGPRESS_ENDPOINT"):
        r.errors.append("THINGPRESS_ENDPOINT: only used with THINGPRESS_TARGET=local")
    state_bucket = r.get("THINGPRESS_STATE_BUCKET")
    # aws target: s3 state when a state bucket is configured; without one, local
    # state (a developer's throwaway stack). CI sets THINGPRESS_BACKEND=s3
    # explicitly, so a missing bucket there is an error, never a silent fallback.
    backend = r.choice("THINGPRESS_BACKEND", BACKENDS, "s3" if target == "aws" and state_bucket else "local")
    if backend == "s3" and target == "local":
        r.errors.append("THINGPRESS_BACKEND: the local target keeps local state; s3 is for the aws target")
    if backend == "s3" and target == "aws" and not state_bucket:
        r.errors.append("THINGPRESS_STATE_BUCKET: required with THINGPRESS_BACKEND=s3 "
                        "(the S3 bucket holding Terraform state; see README, bootstrap the state bucket)")
    if state_bucket and not re.match(r"^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]$", state_bucket):
        r.errors.append(f"THINGPRESS_STATE_BUCKET: {state_bucket!r} is not a valid S3 bucket name")
    state_region = r.get("THINGPRESS_STATE_REGION")
    if state_region and not REGION_RE.match(state_region):
        r.errors.append(f"THINGPRESS_STATE_REGION: {state_region!r} is not an AWS region name")
    return {"target": target, "endpoint": endpoint, "backend": backend, "state_bucket": state_bucket,
            "state_region": state_region or region}


def read_tags(r: Reader) -> dict[str, Any]:
    """``tags``."""
    tags: dict[str, str] = {}
    raw_tags = r.get("THINGPRESS_TAGS")
    if raw_tags:
        try:
            given_tags = json.loads(raw_tags)
            if not isinstance(given_tags, dict):
                raise TypeError
            for key, value in given_tags.items():
                if not isinstance(value, str) or not _TAG_KEY.match(key) or key.lower().startswith("aws:"):
                    r.errors.append(f"THINGPRESS_TAGS: tag {key!r} must be a valid tag key with a string value")
                else:
                    tags[key] = value
        except (ValueError, TypeError):
            r.errors.append("THINGPRESS_TAGS: must be a JSON object of tag key to string value")
    return {"tags": tags}
