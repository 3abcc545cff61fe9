"""Import compliance-stream and platform consent messages into the ledger.

One message per line, in the X API v2 compliance envelope (see marketplace/consent/ledger.py for
the types). Messages are parsed one at a time and recorded and applied in batches, each in its
own transaction, so memory does not depend on the input size. Events may arrive twice and out of
order: the ledger's last-writer-wins fold makes the resulting state independent of both, and
signals for posts or users not imported yet wait in the ledger until they are.
"""

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

import orjson

from marketplace.consent.ledger import MalformedMessage, Signal, parse_message, record_and_apply
from marketplace.services.corpus_import import ErrorList

BATCH_SIGNALS = 2000


@dataclass
class ComplianceImportSummary(ErrorList):
    """What an import of compliance events did. `signals` counts ledger signals parsed (an
    `ai_opt_out` for two purposes is two); `recorded` the new ledger entries; `duplicates` the
    signals already in the ledger; `applied` the creator and post rows whose state changed."""

    lines: int = 0
    events: int = 0
    signals: int = 0
    recorded: int = 0
    duplicates: int = 0
    applied: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def import_compliance_events(
    *, lines: Iterable[str | bytes], source: str = "import", batch_size: int = BATCH_SIGNALS
) -> ComplianceImportSummary:
    """Parse, record and apply compliance messages, one per line. Blank lines are ignored; a
    malformed line is listed in the summary's errors with its 1-based number. Safe to run
    twice: the second run records nothing and changes nothing."""
    summary = ComplianceImportSummary()
    batch: list[Signal] = []
    for line_number, line in enumerate(lines, start=1):
        summary.lines += 1
        if not line.strip():
            continue
        try:
            signals = parse_message(orjson.loads(line), source=source)
        except (ValueError, MalformedMessage) as error:  # JSON, encoding and message errors
            summary.add_error(line_number, str(error))
            continue
        summary.events += 1
        batch.extend(signals)
        if len(batch) >= batch_size:
            _flush(batch, summary)
            batch = []
    _flush(batch, summary)
    return summary


def record_compliance_messages(
    *, messages: Iterable[dict[str, Any]], source: str = "import", batch_size: int = BATCH_SIGNALS
) -> ComplianceImportSummary:
    """The same for already-decoded messages (the synthetic corpus's fast path)."""
    return import_compliance_events(
        lines=(json.dumps(message) for message in messages), source=source, batch_size=batch_size
    )


def _flush(batch: list[Signal], summary: ComplianceImportSummary) -> None:
    if not batch:
        return
    recorded, applied = record_and_apply(batch)
    summary.signals += len(batch)
    summary.recorded += recorded
    summary.duplicates += len(batch) - recorded
    summary.applied += applied
