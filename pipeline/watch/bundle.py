"""A ZIP bundle in the hot folder: every document inside is processed on its own, and the bundle file
is moved once, when the last of them is finished."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from pipeline.ingest import Outcome, State
from pipeline.watch.claims import Claim

# One logger for the whole package: log lines (``--log-json``'s "logger") and docs name ``pipeline.watch``.
log = logging.getLogger("pipeline.watch")


@dataclass
class Bundle:
    """A claimed ZIP bundle: done when every document inside is; failed/ names the members that failed."""

    claim: Claim
    remaining: int
    outcomes: list[Outcome] = field(default_factory=list)

    def member_done(self, outcome: Outcome) -> Outcome | None:
        """Count a member's outcome; once all are in, the bundle's own outcome (None before)."""
        self.outcomes.append(outcome)
        log.info("bundle member %s: %s %s", outcome.path, outcome.state, outcome.message or outcome.status)
        self.remaining -= 1
        if self.remaining > 0:
            return None
        failed = [o for o in self.outcomes if o.state == State.FAILED]
        stored = sum(o.state in (State.STORED, State.ALREADY_STORED) for o in self.outcomes)
        same = "; ".join(
            f"{o.path.rsplit('!', 1)[-1]}: {o.same_invoice}" for o in self.outcomes if o.same_invoice
        )
        if not failed:
            return Outcome(
                str(self.claim.path), State.STORED, message=f"{stored} documents stored", same_invoice=same
            )
        retry = all(o.error_type == "StorageError" for o in failed)
        reasons = "; ".join(f"{o.path.rsplit('!', 1)[-1]}: {o.message}" for o in failed)
        return Outcome(
            str(self.claim.path),
            State.FAILED,
            message=f"{len(failed)} of {len(self.outcomes)} files in the bundle failed ({stored} stored): {reasons}",
            error_type="StorageError" if retry else "BundleMemberFailed",
        )
