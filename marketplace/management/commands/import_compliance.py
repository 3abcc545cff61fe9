import json

from django.core.management.base import BaseCommand, CommandParser

from marketplace.management.commands._input_files import read_lines
from marketplace.services.compliance_import import import_compliance_events


class Command(BaseCommand):
    help = (
        "Import X API v2 compliance and consent events (one message per line, .jsonl or "
        ".jsonl.gz) into the ledger and apply them. Streaming and idempotent."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("paths", nargs="+", metavar="PATH")
        parser.add_argument("--source", default="import", help="recorded on each ledger entry")

    def handle(self, *args: object, paths: list[str], source: str, **options: object) -> None:
        for path in paths:
            summary = import_compliance_events(lines=read_lines(path), source=source[:32])
            for error in summary.errors:
                self.stderr.write(f"{path}:{error.line}: {error.error}")
            counts = {key: value for key, value in summary.to_dict().items() if key != "errors"}
            self.stdout.write(f"{path}: {json.dumps(counts)}")
