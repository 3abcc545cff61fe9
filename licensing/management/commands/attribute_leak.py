"""`manage.py attribute_leak FILE`: which license(s) a leaked file came from."""

from pathlib import Path
from typing import Any

import orjson
from django.core.management.base import BaseCommand, CommandError, CommandParser

from licensing.services import leaks


class Command(BaseCommand):
    help = (
        "Attribute a leaked file (Parquet, JSON Lines optionally .zst, CSV, or plain lines of "
        "pseudonyms or texts) to the license(s) and extract(s) it came from, with evidence."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path)

    def handle(self, *args: Any, **options: Any) -> None:
        path: Path = options["file"]
        if not path.is_file():
            raise CommandError(f"{path} is not a file.")
        material = leaks.read_leaked_file(path)
        found = leaks.attribute(material)
        self.stdout.write(
            orjson.dumps(
                {
                    "file": str(path),
                    "ids_read": len(material.ids),
                    "texts_read": len(material.texts),
                    "attributions": [entry.as_dict() for entry in found],
                },
                option=orjson.OPT_INDENT_2,
            ).decode()
        )
        if not found:
            self.stderr.write("No license matched: nothing in the file was delivered by us.")
