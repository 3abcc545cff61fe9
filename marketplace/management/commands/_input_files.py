"""Opening import files: `.jsonl` or `.jsonl.gz`, read as a stream of byte lines."""

import gzip
from collections.abc import Iterator
from pathlib import Path

from django.core.management.base import CommandError


def read_lines(path: str) -> Iterator[bytes]:
    """Yield the lines of a file, decompressing `.gz` on the fly; memory stays constant."""
    file_path = Path(path)
    if not file_path.is_file():
        raise CommandError(f"{path}: no such file")
    opener = gzip.open if file_path.name.endswith(".gz") else open
    with opener(file_path, "rb") as stream:
        yield from stream
