"""What ``make iam-check`` found, and what it prints (its last line is the summary tests and docs read).

One job: the :class:`Report` of one stack's check and :func:`print_report`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from thingpress_cli.iamcheck.calls import Request


@dataclass
class Report:
    requests: list[Request] = field(default_factory=list)
    paths: list[Request] = field(default_factory=list)
    denied: list[tuple[Request, str]] = field(default_factory=list)
    denied_paths: list[tuple[Request, str]] = field(default_factory=list)
    ignored_arns: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)
    unused: list[str] = field(default_factory=list)
    #: grants never exercised that an :data:`UNEXERCISED` entry excuses: (holder, statement, action).
    excused: list[tuple[str, str, str]] = field(default_factory=list)
    versions: dict[str, str] = field(default_factory=dict)
    per_function: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not (self.denied or self.denied_paths or self.ignored_arns or self.unknown or self.unused)

    def summary(self) -> str:
        return (f"iam-check: calls {len({r.triple for r in self.requests})}, denied {len(self.denied)}, "
                f"service paths {len({r.triple for r in self.paths})} denied {len(self.denied_paths)}, "
                f"ignored ARNs {len(self.ignored_arns)}, unexplained unused grants {len(self.unused)}, "
                f"excused unused grants {len(self.excused)}")


def print_report(report: Report, calls: int, out) -> None:
    versions = ", ".join(f"{k} {v}" for k, v in sorted(report.versions.items()))
    print(f"iam-check: {calls} recorded calls; evaluator and data: {versions}", file=out)
    for fn, count in report.per_function.items():
        print(f"  {fn}: {count} (role, action, resource)", file=out)
    for request, verdict in [*report.denied, *report.denied_paths]:
        print(f"DENIED {verdict}: {request.principal} {request.action} {request.resource} ({request.origin}; "
              f"context {dict(request.context)})", file=out)
    for line in report.ignored_arns:
        print(f"IGNORED ARN: {line}", file=out)
    for line in report.unknown:
        print(f"UNKNOWN: {line}", file=out)
    for line in report.unused:
        print(f"UNUSED: {line}", file=out)
    print(report.summary(), file=out)
