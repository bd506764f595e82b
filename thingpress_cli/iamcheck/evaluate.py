"""Each IAM request evaluated by ``@cloud-copilot/iam-simulate`` (simulate.mjs, run with node).

One job: a request with the principal's identity policy (the function's role policy;
none for a service) and the resource's policy (key, queue, bucket or topic policy),
sent to the simulator in one batch; its verdicts and versions back.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from thingpress_cli.core.toolchain import REPO
from thingpress_cli.iamcheck.calls import Request
from thingpress_cli.iamcheck.stack import Stack

SIMULATOR = Path(__file__).resolve().parent / "simulate.mjs"
NODE = REPO / "node_modules" / ".bin" / "node"


def resource_policy(stack: Stack, request: Request) -> dict[str, Any] | None:
    service = request.action.split(":", 1)[0]
    if service == "kms":
        return stack.key_policy(request.resource)
    if service == "sqs":
        return stack.queue_policy(request.resource)
    if service == "s3":
        return stack.bucket_policy(request.resource.split(":::", 1)[1].split("/", 1)[0])
    if service == "sns":
        return stack.topic_policy(request.resource)
    return None


def simulate(stack: Stack, requests: list[Request]) -> tuple[list[str], dict[str, str]]:
    roles = {fn.role_arn: fn.policy for fn in stack.functions.values()}
    simulations = []
    for request in requests:
        identity = roles.get(request.principal)
        sim: dict[str, Any] = {
            "request": {"principal": request.principal, "action": request.action,
                        "resource": {"resource": request.resource, "accountId": stack.account},
                        "contextVariables": dict(request.context)},
            "identityPolicies": [{"name": "role", "policy": identity}] if identity else [],
            "serviceControlPolicies": [], "resourceControlPolicies": [],
        }
        policy = resource_policy(stack, request)
        if policy is not None:
            sim["resourcePolicy"] = policy
        simulations.append(sim)
    answer = subprocess.run([str(NODE), str(SIMULATOR)], input=json.dumps({"simulations": simulations}),
                            capture_output=True, text=True, check=False, cwd=REPO)
    if answer.returncode != 0:
        raise RuntimeError(f"{SIMULATOR.name} failed (exit {answer.returncode}): {answer.stderr.strip()}")
    out = json.loads(answer.stdout)
    return [r["result"] if r["result"] != "Error" else f"Error {json.dumps(r['detail'])}" for r in out["results"]], \
        out["versions"]
