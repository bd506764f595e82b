"""``AuditTable``: typed access to the audit table, made of its parts (one module each; see
``thingpress.audit``). Every part shares the client, the table and the writes' discipline
(``thingpress.audit.writes.TableWrites``)."""

from __future__ import annotations

from thingpress.audit.chain import Chains
from thingpress.audit.claims import Claims
from thingpress.audit.outcomes import Outcomes
from thingpress.audit.queries import Queries
from thingpress.audit.rollback import Rollbacks
from thingpress.audit.summaries import Summaries


class AuditTable(Outcomes, Queries, Summaries, Claims, Chains, Rollbacks):
    """Typed access to the audit table through an injected low-level DynamoDB client."""
