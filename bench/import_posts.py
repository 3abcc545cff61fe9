"""Benchmark: import posts per second, through the importer and through the fast path.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/commonplace_bench \
        .venv/bin/python bench/import_posts.py --posts 1000000

Generates a synthetic corpus as X API v2 pages into a temporary .jsonl (`--gzip`: .jsonl.gz;
gzip decompression then costs ~10 s per million posts) (not timed), then
times `import_post_pages` on it, and, separately, `generate_corpus --format db`'s loader
(`load_into_database`). Both runs start from an empty corpus: the script DELETES every creator,
post and ledger entry of the database it is pointed at, so point it at a benchmark database
(migrated), never at one whose data matters. It is a benchmark, not a test.
"""

import argparse
import gzip
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "marketplace.settings")
os.environ.setdefault("DJANGO_DEBUG", "1")

import django

django.setup()

from django.db import connection  # noqa: E402

from marketplace.corpus.generator import CorpusSpec  # noqa: E402
from marketplace.models import Creator, LedgerEntry  # noqa: E402
from marketplace.services.corpus_import import import_post_pages  # noqa: E402
from marketplace.services.synthetic_corpus import load_into_database, write_twitter_v2  # noqa: E402


def empty_corpus() -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "TRUNCATE marketplace_postversion, marketplace_post, marketplace_creator, "
                "marketplace_ledgerentry CASCADE"
            )
    else:
        LedgerEntry.objects.all().delete()
        Creator.objects.all().delete()


def load_average() -> str:
    # The machine is shared: a figure means little without the load it was measured under.
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--posts", type=int, default=100_000)
    parser.add_argument("--creators", type=int, default=0, help="default: posts / 20")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--skip-fast-path", action="store_true")
    parser.add_argument("--gzip", action="store_true", help="import from .jsonl.gz")
    options = parser.parse_args()
    spec = CorpusSpec(
        posts=options.posts, creators=options.creators or max(1, options.posts // 20),
        seed=options.seed,
    )  # fmt: skip
    print(f"database: {connection.vendor} {connection.settings_dict['NAME']}")
    print(f"corpus: {spec.posts} posts, {spec.creators} creators, seed {spec.seed}")
    with tempfile.TemporaryDirectory() as directory:
        pages_path = Path(directory) / ("bench.jsonl.gz" if options.gzip else "bench.jsonl")
        started = time.perf_counter()
        report, _events = write_twitter_v2(spec=spec, out=pages_path)
        print(
            f"generated {report.posts} tweets in {report.pages} pages "
            f"({pages_path.stat().st_size / 1e6:.0f} MB) in "
            f"{time.perf_counter() - started:.1f}s (not timed)"
        )
        empty_corpus()
        started = time.perf_counter()
        with (gzip.open if options.gzip else open)(pages_path, "rb") as lines:
            summary = import_post_pages(lines=lines)
        elapsed = time.perf_counter() - started
        print(
            f"import_post_pages: {summary.created} posts, {summary.creators_created} creators, "
            f"{summary.error_count} errors in {elapsed:.1f}s = "
            f"{summary.created / elapsed:,.0f} posts/s (load average {load_average()})"
        )
    if not options.skip_fast_path:
        empty_corpus()
        started = time.perf_counter()
        load = load_into_database(spec=spec)
        elapsed = time.perf_counter() - started
        print(
            f"generate_corpus --format db (posts and {load.compliance.events} events): "
            f"{load.posts.created} posts in {elapsed:.1f}s = "
            f"{load.posts.created / elapsed:,.0f} posts/s (load average {load_average()})"
        )


if __name__ == "__main__":
    main()
