"""Benchmark: the catalog preview (licensing/services/preview.py) on a large corpus.

    createdb -h 127.0.0.1 -U postgres commonplace_preview_bench
    export DATABASE_URL=postgres://postgres@127.0.0.1:5432/commonplace_preview_bench
    DJANGO_DEBUG=1 .venv/bin/python manage.py migrate
    DJANGO_DEBUG=1 .venv/bin/python bench/preview.py --posts 10000000

Builds the corpus when the database holds fewer than `--posts` posts, and reuses it otherwise.
Generating posts runs at about 6,000 posts/s on an idle 2-core machine (half that when shared),
so beyond `--generate` posts (default 1M) the generated corpus is *tiled*: copy k of every
generated creator, post and ledger entry is inserted in SQL with platform ids shifted by
k * 10^9 (creators) and k * 10^16 (posts), handles suffixed, so every copy keeps the generator's
proportions of languages, hashtags, deleted, protected, opted-out and withheld subjects, and the
ledger still explains every state column. Then, for a few representative scopes, it prints:

* `sample`: the 20-record sample alone (never cached), median of 3;
* `count`: the count as the preview takes it on a cache miss (exact within the budget, else
  the estimate), and what it answered;
* `exact`: the exact COUNT(*) without a budget, once, to show what the budget saves and how far
  the estimate is off;
* `preview cold`: a whole `preview_dataset` call with an empty count cache;
* `preview warm`: the same call again (count from the cache), median of 3.

"Cold" is about the count cache; PostgreSQL's buffers and the OS page cache are warm after the
first scope (the 10M-post corpus fits in RAM). PostgreSQL only. A benchmark, not a test; it
creates a bench dataset and offer in the database it is pointed at.
"""

import argparse
import os
import statistics
import time
from collections.abc import Callable
from itertools import islice
from typing import Any

from _setup import bench_dataset as _bench_dataset  # configures Django first
from django.core.cache import cache
from django.db import connection, transaction
from django.utils import timezone

from licensing.services import preview
from marketplace.consent.eligibility import (
    eligible_posts,
    eligible_records,
)
from marketplace.consent.scope import Scope
from marketplace.corpus.generator import CREATOR_ID_BASE, POST_ID_BASE, CorpusSpec
from marketplace.models import (
    Creator,
    Dataset,
    LedgerEntry,
    Organization,
    Post,
)
from marketplace.services.demo import seed_demo_accounts
from marketplace.services.synthetic_corpus import load_into_database

DATASET_SLUG = "bench-preview"
CREATOR_TILE = 10**9  # more creators than any generated corpus has
POST_TILE = 10**16  # ten tiles of these stay below the generator's edit ids (2.7e18)
MAX_TILES = 60

SCOPES: dict[str, dict[str, Any]] = {
    "whole dataset": {},
    "ja, 2 weeks of March": {
        "languages": ["ja"],
        "date_from": "2024-03-01T00:00:00Z",
        "date_to": "2024-03-15T00:00:00Z",
    },
    "hashtag #opendata": {"hashtags_any": ["opendata"]},
    "keyword 'coffee'": {"keywords": ["coffee"]},
    "keyword, no match": {"keywords": ["zzyzx"]},
}


def ensure_corpus(posts: int, generate: int) -> None:
    have = Post.objects.count()
    if have >= posts:
        print(f"corpus: {have:,} posts (reused)")
        return
    started = time.perf_counter()
    if have == 0:
        size = min(posts, generate)
        print(f"corpus: generating {size:,} posts (slow, not timed)...", flush=True)
        load_into_database(spec=CorpusSpec(posts=size, creators=max(1, size // 20), seed=1))
        have = Post.objects.count()
    base = Post.objects.filter(platform_id__lt=POST_ID_BASE + POST_TILE).count()
    tile = 1
    while have < posts:
        if tile >= MAX_TILES:
            raise SystemExit(f"cannot reach {posts:,} posts by tiling {base:,}")
        if not Post.objects.filter(platform_id=POST_ID_BASE + tile * POST_TILE).exists():
            print(f"corpus: {have:,} posts, adding tile {tile}...", flush=True)
            add_tile(tile)
            have = Post.objects.count()
        tile += 1
    print(f"  built in {time.perf_counter() - started:.0f}s; ANALYZE...", flush=True)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")


def _copy_sql(model: Any, overrides: dict[str, str], source: str) -> str:
    columns = [field.column for field in model._meta.concrete_fields if field.column != "id"]
    values = [overrides.get(column, f"src.{column}") for column in columns]
    return (
        f"INSERT INTO {model._meta.db_table} ({', '.join(columns)}) "
        f"SELECT {', '.join(values)} {source}"
    )


def add_tile(tile: int) -> None:
    """Copy every generated creator, post and ledger entry once more, ids shifted by `tile`."""
    creator_shift, post_shift = tile * CREATOR_TILE, tile * POST_TILE
    creators = Creator._meta.db_table
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL synchronous_commit = off")
        cursor.execute(
            _copy_sql(
                Creator,
                {
                    "platform_id": f"src.platform_id + {creator_shift}",
                    "handle": f"src.handle || '_{tile}'",
                    "user_id": "NULL",
                },
                f"FROM {creators} src WHERE src.platform_id < {CREATOR_ID_BASE + CREATOR_TILE}",
            )
        )
        cursor.execute(
            _copy_sql(
                Post,
                {
                    "platform_id": f"src.platform_id + {post_shift}",
                    "author_id": "copy.id",
                    "referenced_platform_id": f"src.referenced_platform_id + {post_shift}",
                },
                f"FROM {Post._meta.db_table} src "
                f"JOIN {creators} author ON author.id = src.author_id "
                f"JOIN {creators} copy ON copy.platform_id = author.platform_id + {creator_shift} "
                f"WHERE src.platform_id < {POST_ID_BASE + POST_TILE} "
                "ORDER BY src.platform_id",
            )
        )
        cursor.execute(
            _copy_sql(
                LedgerEntry,
                {
                    "subject_platform_id": "src.subject_platform_id + CASE src.subject_kind "
                    f"WHEN 'post' THEN {post_shift} ELSE {creator_shift} END",
                    "dedupe_key": f"encode(sha256((src.dedupe_key || ':{tile}')::bytea), 'hex')",
                },
                f"FROM {LedgerEntry._meta.db_table} src "
                f"WHERE (src.subject_kind = 'post' AND src.subject_platform_id < "
                f"{POST_ID_BASE + POST_TILE}) OR (src.subject_kind = 'user' AND "
                f"src.subject_platform_id < {CREATOR_ID_BASE + CREATOR_TILE})",
            )
        )


def bench_dataset() -> tuple[Dataset, Organization]:
    organization = seed_demo_accounts().vendor
    return _bench_dataset(DATASET_SLUG, "Benchmark: preview"), organization


def timed(function: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = function()
    return (time.perf_counter() - started) * 1000, result


def in_preview_session(function: Callable[[], Any], *, timeout_ms: int = 0) -> Any:
    """Run `function` in a transaction set up as the preview sets its own (JIT off)."""
    with transaction.atomic():
        preview._tune_session(statement_timeout_ms=timeout_ms)
        return function()


def bench_scope(
    name: str, scope: dict[str, Any], dataset: Dataset, organization: Organization, exact: bool
) -> None:
    arguments: dict[str, Any] = {
        "dataset": dataset,
        "scope": Scope.from_dict(scope),
        "purposes": ["training"],
        "as_of": timezone.now(),
        "licensee_country": organization.country,
    }

    def call() -> preview.Preview:
        return preview.preview_dataset(
            organization=organization, dataset=dataset, scope=scope, purposes=["training"]
        )

    cache.clear()
    cold_ms, cold = timed(call)
    warm_ms = statistics.median(timed(call)[0] for _ in range(3))

    def sample() -> list[dict[str, Any]]:
        return list(islice(eligible_records(**arguments, chunk_size=20), 20))

    sample_ms = statistics.median(timed(lambda: in_preview_session(sample))[0] for _ in range(3))
    count_ms, (count, is_estimate) = timed(
        lambda: in_preview_session(lambda: preview._count(eligible_posts(**arguments)))
    )
    line = (
        f"{name:<22} sample {sample_ms:8.1f} ms | count {count_ms:8.1f} ms "
        f"({'~' if is_estimate else '='}{count:,}) | preview cold {cold_ms:8.1f} ms "
        f"({'~' if cold.count_is_estimate else '='}{cold.eligible_count:,}, "
        f"{len(cold.sample)} records) | warm {warm_ms:6.1f} ms"
    )
    if exact:
        exact_ms, exact_count = timed(
            lambda: in_preview_session(lambda: eligible_posts(**arguments).count())
        )
        error = (count - exact_count) / exact_count * 100 if exact_count else 0.0
        line += f" | exact {exact_ms:9.1f} ms (={exact_count:,}; estimate off {error:+.2f}%)"
    print(line, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--posts", type=int, default=10_000_000, help="corpus size")
    parser.add_argument(
        "--generate", type=int, default=1_000_000, help="posts to generate before tiling"
    )
    parser.add_argument(
        "--no-exact", action="store_true", help="skip the unbudgeted exact counts (slow)"
    )
    parser.add_argument("--build-only", action="store_true", help="build the corpus and stop")
    options = parser.parse_args()
    if connection.vendor != "postgresql":
        raise SystemExit("PostgreSQL only: set DATABASE_URL")
    ensure_corpus(options.posts, options.generate)
    if options.build_only:
        return
    dataset, organization = bench_dataset()
    load = os.getloadavg()
    print(
        f"posts: {Post.objects.count():,}; nproc {os.cpu_count()}; load "
        f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; count budget {preview.COUNT_BUDGET_MS} ms, "
        f"estimate over ~{preview.ESTIMATE_SAMPLE_ROWS:,} rows",
        flush=True,
    )
    for name, scope in SCOPES.items():
        bench_scope(name, scope, dataset, organization, exact=not options.no_exact)
    load = os.getloadavg()
    print(f"load after: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")


if __name__ == "__main__":
    main()
