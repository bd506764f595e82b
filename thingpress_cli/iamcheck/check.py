"""``make iam-check``: the recorded calls and the service paths against the synthesized policies.

1. Every call the local runner recorded (``build/local/calls/<function>.jsonl``) becomes
   the IAM requests AWS authorizes for it (:mod:`.calls`), SSE-KMS included.
2. The calls AWS makes for the stack are added (:mod:`.service_paths`): S3 event
   notifications into the encrypted manifest queues, CloudWatch alarms into the
   encrypted topic, CloudWatch Logs encrypting each function's log group, each event
   source mapping reading its queue with the function's role, and Lambda writing
   the function's logs and traces with it.
3. ``@cloud-copilot/iam-simulate`` evaluates each distinct request against the
   principal's identity policy (the function's role policy; none for a service)
   and the resource's policy (key, queue, bucket or topic policy). It validates
   the request (action, resource type, condition keys) first; see simulate.mjs for
   the one key form (``kms:EncryptionContext:<key>``) version 0.1.173 drops
   (:mod:`.evaluate`).
4. Static checks over every policy of the stack (:mod:`.static_checks`): each
   resource ARN names a resource type of each action of its statement (an ARN IAM
   ignores is an error), each condition key exists for the statement's actions, and
   each granted action is exercised by a request or excused in
   :data:`.excuses.UNEXERCISED` (by holder, statement and action) with its reason.

The last line printed is the summary (:mod:`.report`); the exit status is 1 on any finding.

This module's one job is the check in order, per stack, and its command line.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

from thingpress_cli.core.toolchain import REPO
from thingpress_cli.iamcheck import calls as calls_mod
from thingpress_cli.iamcheck.data import IamData
from thingpress_cli.iamcheck.evaluate import simulate
from thingpress_cli.iamcheck.report import Report, print_report
from thingpress_cli.iamcheck.service_paths import service_paths
from thingpress_cli.iamcheck.stack import load
from thingpress_cli.iamcheck.static_checks import static_checks
from thingpress_cli.local import state

CALLS_DIR = state.LOCAL_DIR / "calls"


def run(stack_file: Path, calls_dir: Path, account: str = state.ACCOUNT_ID, out=sys.stdout,
        only_own: bool = False, judge_unused: bool = True) -> Report:
    """Evaluate the recorded calls against ``stack_file``; ``only_own``: ignore other stacks' functions' calls;
    ``judge_unused``: report grants never exercised (only for an environment the whole suite ran against)."""
    data = IamData()
    stack = load(stack_file, account)
    report = Report()
    principals = {fn.name: fn.role_arn for fn in stack.functions.values()}
    recorded = calls_mod.load_calls(calls_dir)
    if only_own:
        recorded = [call for call in recorded if call.function in principals]
    for call in recorded:
        if call.function not in principals:
            raise SystemExit(f"{calls_dir / (call.function + '.jsonl')}: no function {call.function} in {stack_file}")
        try:
            report.requests += calls_mod.requests_for(call, principals[call.function], data, stack)
        except calls_mod.Unmappable as error:  # a finding, like a denial: the data set cannot place the call
            report.unknown.append(str(error))
    report.paths = service_paths(stack)
    distinct = sorted({*report.requests, *report.paths}, key=lambda r: (r.principal, r.action, r.resource, r.context))
    results, report.versions = simulate(stack, distinct)
    verdict = dict(zip(distinct, results))
    path_set = set(report.paths)
    for request in distinct:
        if verdict[request] != "Allowed":
            (report.denied_paths if request in path_set else report.denied).append((request, verdict[request]))
    by_function: dict[str, set[tuple[str, str, str]]] = defaultdict(set)
    role_to_fn = {v: k for k, v in principals.items()}
    for request in report.requests:
        by_function[role_to_fn[request.principal]].add(request.triple)
    report.per_function = {k: len(v) for k, v in sorted(by_function.items())}
    exercised = {(r.principal, r.action) for r in distinct if verdict[r] == "Allowed"}
    static_checks(stack, data, exercised, report)
    if not judge_unused:
        report.unused = []
    print_report(report, len(recorded), out)
    return report


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m thingpress_cli.iamcheck", description=__doc__.splitlines()[0])
    parser.add_argument("--stack", type=Path, action="append",
                        help="a synthesized cdk.tf.json (repeatable; default: every locally deployed environment's, "
                             "each judging the calls of its own functions)")
    parser.add_argument("--calls", type=Path, default=CALLS_DIR)
    parser.add_argument("--account", default=os.environ.get("THINGPRESS_IAM_CHECK_ACCOUNT", state.ACCOUNT_ID))
    args = parser.parse_args(list(argv) if argv is not None else None)
    # By default every locally synthesized environment whose functions recorded calls (a stale
    # synthesis of an environment destroyed earlier has none).
    stacks = args.stack or [path for path in sorted(REPO.glob("cdktf.out.*/stacks/thingpress-*/cdk.tf.json"))
                            if any(args.calls.glob(f"{path.parent.name}-*.jsonl"))]
    missing = [path for path in stacks if not path.is_file()]
    if not stacks or missing:
        print(f"iam-check: no synthesized local stack ({', '.join(map(str, missing)) or 'cdktf.out.<env>/'}): "
              "deploy locally first (`thingpress local up`)", file=sys.stderr)
        return 2
    if not any(args.calls.glob("*.jsonl")):
        print(f"iam-check: no recorded calls in {args.calls}: run the integration tests on a local deployment",
              file=sys.stderr)
        return 2
    # Unused grants are judged on the local environment only: the whole suite runs against it, while
    # another environment (tests/environments' pr7) imports a manifest or two and is destroyed.
    from stacks.naming import DEFAULT_ENV
    from thingpress_cli.local.deployments import stack_name

    primary = stack_name(DEFAULT_ENV)
    reports = [run(path, args.calls, args.account, only_own=len(stacks) > 1,
                   judge_unused=len(stacks) == 1 or path.parent.name == primary) for path in stacks]
    return 0 if all(report.ok for report in reports) else 1
