"""Write the synthetic corpus (marketplace/corpus/generator.py) to files or to the database.

`write_twitter_v2` writes X API v2 pages and, next to them, the compliance events, so the real
importers can be exercised on any size. `load_into_database` is the fast path: the same pages
go through the same bulk loader as `import_post_pages` (without the JSON round trip), then the
events through the ledger. Both stream: memory does not grow with the number of posts.
"""

import gzip
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from marketplace.corpus.generator import CorpusSpec, GenerationReport, SyntheticCorpus
from marketplace.corpus.x_format import parse_page
from marketplace.services.compliance_import import (
    ComplianceImportSummary,
    import_compliance_events,
)
from marketplace.services.corpus_import import BATCH_POSTS, ImportSummary, load_post_pages

EVENT_SOURCE = "synthetic"


def compliance_path_for(pages_path: Path) -> Path:
    """Where the compliance events of a pages file go: `corpus.jsonl.gz` ->
    `corpus.compliance.jsonl.gz`, `corpus.jsonl` -> `corpus.compliance.jsonl`."""
    name = pages_path.name
    compressed = name.endswith(".gz")
    stem = name.removesuffix(".gz").removesuffix(".jsonl")
    return pages_path.with_name(f"{stem}.compliance.jsonl{'.gz' if compressed else ''}")


def open_for_writing(path: Path) -> IO[str]:
    if path.name.endswith(".gz"):
        return gzip.open(path, "wt", encoding="utf-8", compresslevel=3)
    return path.open("w", encoding="utf-8")


def _dumps(document: Any) -> str:
    return json.dumps(document, ensure_ascii=False, separators=(",", ":"))


def write_twitter_v2(*, spec: CorpusSpec, out: Path) -> tuple[GenerationReport, Path]:
    """Write pages to `out` (gzip if it ends in .gz) and the compliance events to
    `compliance_path_for(out)`. Deterministic for a spec; overwrites both files, so running it
    twice gives the same files."""
    report = GenerationReport()
    events_path = compliance_path_for(out)
    with open_for_writing(out) as pages_file, open_for_writing(events_path) as events_file:

        def on_event(message: dict[str, Any]) -> None:
            report.events += 1
            events_file.write(_dumps(message) + "\n")

        for page in SyntheticCorpus(spec).pages(on_event):
            report.pages += 1
            report.posts += len(page["data"])
            pages_file.write(_dumps(page) + "\n")
    return report, events_path


@dataclass(frozen=True)
class DatabaseLoad:
    posts: ImportSummary
    compliance: ComplianceImportSummary


def load_into_database(*, spec: CorpusSpec, batch_size: int = BATCH_POSTS) -> DatabaseLoad:
    """Generate the corpus straight into the database through the importers' bulk loader; the
    compliance events are spooled to a temporary file and recorded after the posts. Safe to run
    twice: the second run changes nothing (observations and events are already recorded)."""
    corpus = SyntheticCorpus(spec)
    with tempfile.TemporaryFile("w+", encoding="utf-8") as spool:

        def on_event(message: dict[str, Any]) -> None:
            spool.write(_dumps(message) + "\n")

        posts = load_post_pages(
            pages=(parse_page(page) for page in corpus.pages(on_event)), batch_size=batch_size
        )
        spool.seek(0)
        compliance = import_compliance_events(lines=spool, source=EVENT_SOURCE)
    return DatabaseLoad(posts=posts, compliance=compliance)
