import json

from django.core.management.base import BaseCommand, CommandParser

from marketplace.management.commands._input_files import read_lines
from marketplace.services.corpus_import import import_post_pages


class Command(BaseCommand):
    help = (
        "Import X API v2 response pages (one page per line, .jsonl or .jsonl.gz) into the corpus. "
        "Streaming and idempotent; malformed lines are reported with their numbers and skipped."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("paths", nargs="+", metavar="PATH")

    def handle(self, *args: object, paths: list[str], **options: object) -> None:
        for path in paths:
            summary = import_post_pages(lines=read_lines(path))
            for error in summary.errors:
                self.stderr.write(f"{path}:{error.line}: {error.error}")
            counts = {key: value for key, value in summary.to_dict().items() if key != "errors"}
            self.stdout.write(f"{path}: {json.dumps(counts)}")
