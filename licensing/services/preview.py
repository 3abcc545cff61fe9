"""The catalog preview: how many posts a scope would deliver, and a sample exactly as delivered.

Built to stay fast on a 10M-post corpus (figures in docs/PERFORMANCE.md, "Preview"):

* The sample is never cached and never approximated: the first 20 eligible posts in platform id
  order, read through the same `eligible_records` stream an extract uses, which walks the
  platform id index and stops at the 20th hit. A scope almost nothing matches (a rare keyword)
  walks the whole corpus instead; past a time budget the preview gives no sample at all (and
  does not try again while that scope's count is cached).
* The count is exact when it can be: a sample shorter than 20 *is* the count; otherwise the exact
  `COUNT(*)` runs under a time budget on PostgreSQL. Past the budget the answer is an unbiased
  estimate from a block sample of the posts table (`TABLESAMPLE SYSTEM`, about 100,000 rows),
  flagged `count_is_estimate`. Either answer is cached for a few minutes per dataset, scope,
  purposes, licensee country and rules version, with the instant it was counted.
"""

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from itertools import islice
from typing import Any

from django.core.cache import cache
from django.core.exceptions import EmptyResultSet
from django.db import DatabaseError, connection, transaction
from django.db.models import QuerySet
from django.utils import timezone

from licensing.services.delivery import Pseudonymizer, shape_record
from licensing.services.requests import current_offer
from marketplace.consent.eligibility import RULES_VERSION, eligible_posts, eligible_records
from marketplace.consent.scope import Scope
from marketplace.errors import InvalidInput
from marketplace.models import Dataset, Organization, Post

SAMPLE_SIZE = 20
# How long a count stays good for. Counts move slowly (compliance events hide a few posts an
# hour); the sample, which must never show a hidden post, is always read fresh.
COUNT_CACHE_SECONDS = 300
# Time budgets per statement on PostgreSQL. Past the count's, the preview answers with an
# estimate; past the sample's (a scope almost nothing matches), with no sample.
SAMPLE_BUDGET_MS = 3000
COUNT_BUDGET_MS = 1000
# Roughly how many posts the estimate looks at: about 1% standard error on a count of 1M.
ESTIMATE_SAMPLE_ROWS = 100_000
# A ceiling for the estimate, so that no scope can keep a connection busy.
STATEMENT_CEILING_MS = 10_000


@dataclass(frozen=True)
class Preview:
    eligible_count: int
    count_is_estimate: bool
    counted_at: datetime
    sample: list[dict[str, Any]]


def preview_dataset(
    *,
    organization: Organization,
    dataset: Dataset,
    scope: Any,
    purposes: list[str] | None = None,
) -> Preview:
    """Count the posts eligible now under `scope` (which must lie inside the dataset's base
    scope) and return up to 20 of them consent-filtered, redacted, limited to the offered fields
    and pseudonymized with a preview-only key. Read-only apart from the count cache; raises
    InvalidInput for a scope outside the dataset or unknown purposes."""
    parsed = Scope.from_dict(scope)
    problems = parsed.narrowing_problems(Scope.from_dict(dataset.base_scope))
    if problems:
        raise InvalidInput(
            f"The scope is outside the dataset's base scope: {problems[0]}.",
            code="invalid_scope",
            fields={"scope": problems},
        )
    purposes = purposes or list(current_offer(dataset).allowed_purposes)
    now = timezone.now()
    arguments: dict[str, Any] = {
        "dataset": dataset,
        "scope": parsed,
        "purposes": purposes,
        "as_of": now,
        "licensee_country": organization.country,
    }
    key = _count_cache_key(
        dataset=dataset, scope=parsed, purposes=purposes, licensee_country=organization.country
    )
    cached = cache.get(key)
    with transaction.atomic():
        # A scope that could not be sampled in time is not tried again while its count is
        # cached: an empty sample then, rather than the same wasted budget on every call.
        sample_too_slow = cached is not None and cached["sample_too_slow"]
        sample = (
            None
            if sample_too_slow
            else _sample(arguments, fields=dataset.fields_offered, dataset_slug=dataset.slug)
        )
        if sample is not None and len(sample) < SAMPLE_SIZE:
            # The sample is every eligible post in id order: a short one is the exact count.
            return Preview(
                eligible_count=len(sample), count_is_estimate=False, counted_at=now, sample=sample
            )
        if cached is None:
            # A scope too slow to sample would be at least as slow to count exactly.
            count, is_estimate = _count(eligible_posts(**arguments), try_exact=sample is not None)
            cached = {
                "count": count,
                "is_estimate": is_estimate,
                "counted_at": now,
                "sample_too_slow": sample is None,
            }
            cache.set(key, cached, COUNT_CACHE_SECONDS)
    return Preview(
        eligible_count=max(cached["count"], len(sample or ())),
        count_is_estimate=cached["is_estimate"],
        counted_at=cached["counted_at"],
        sample=sample or [],
    )


def _sample(
    arguments: dict[str, Any], *, fields: list[str], dataset_slug: str
) -> list[dict[str, Any]] | None:
    """The first SAMPLE_SIZE eligible records in id order, shaped as delivered; None when the
    scope is too selective to find them within SAMPLE_BUDGET_MS (a keyword no post contains
    walks the whole corpus). Never a partial answer, so never a misleading one."""
    try:
        with transaction.atomic():  # a savepoint: a cancelled query leaves the rest usable
            _tune_session(statement_timeout_ms=SAMPLE_BUDGET_MS)
            records = list(
                islice(eligible_records(**arguments, chunk_size=SAMPLE_SIZE), SAMPLE_SIZE)
            )
    except EmptyResultSet:
        # A scope no post can match (only retweets, which are never delivered): on PostgreSQL
        # eligible_records compiles the SQL itself, where Django signals "nothing" this way.
        return []
    except DatabaseError as error:
        if not _is_cancelled(error):
            raise
        return None
    pseudonymize = Pseudonymizer.for_preview(dataset_slug)
    return [shape_record(record, fields=fields, pseudonymize=pseudonymize) for record in records]


def _is_cancelled(error: DatabaseError) -> bool:
    """Whether PostgreSQL cancelled the statement for its timeout (SQLSTATE 57014)."""
    return getattr(error.__cause__, "sqlstate", None) == "57014"


def _tune_session(*, statement_timeout_ms: int) -> None:
    """PostgreSQL only, for this transaction: JIT compiles the eligibility expressions for
    about 400 ms per query, more than the sample's whole run, so it is off; and a timeout."""
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL jit = off")
        cursor.execute(f"SET LOCAL statement_timeout = {int(statement_timeout_ms)}")


def _count_cache_key(
    *, dataset: Dataset, scope: Scope, purposes: list[str], licensee_country: str | None
) -> str:
    """Everything the count depends on but the corpus itself (which the cache's expiry covers):
    the dataset's basis and base scope, the normalized scope and purposes, the country and the
    rules version."""
    identity = [
        RULES_VERSION,
        dataset.pk,
        dataset.consent_basis,
        Scope.from_dict(dataset.base_scope).to_dict(),
        scope.to_dict(),
        sorted(set(purposes)),
        (licensee_country or "").upper(),
    ]
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()
    return f"preview-count:{digest}"


def _count(eligible: QuerySet[Post], *, try_exact: bool = True) -> tuple[int, bool]:
    """(count, is_estimate): the exact count, or on PostgreSQL past COUNT_BUDGET_MS (or
    without trying when not `try_exact`) an estimate from a block sample."""
    if connection.vendor != "postgresql":
        return eligible.count(), False
    if try_exact:
        try:
            with transaction.atomic():
                _tune_session(statement_timeout_ms=COUNT_BUDGET_MS)
                return eligible.count(), False
        except DatabaseError as error:
            if not _is_cancelled(error):
                raise
    _tune_session(statement_timeout_ms=STATEMENT_CEILING_MS)
    return _estimated_count(eligible), True


def _estimated_count(eligible: QuerySet[Post]) -> int:
    """Count the eligible posts in a random sample of the posts table's blocks and scale up:
    each block is read with probability p, so count / p estimates the total without bias.
    `REPEATABLE` makes the same question give the same estimate."""
    table = connection.ops.quote_name(Post._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples FROM pg_class WHERE oid = %s::regclass", [table])
        row = cursor.fetchone()
    rows = max(float(row[0]) if row else 0.0, 1.0)
    percent = min(100.0, 100.0 * ESTIMATE_SAMPLE_ROWS / rows)
    sql, params = eligible.values("pk").query.sql_with_params()
    main_from = f"FROM {table} "
    if not sql.startswith("SELECT ") or main_from not in sql:  # pragma: no cover - a guard
        raise RuntimeError("unexpected shape of the eligibility query")
    sampled = sql.replace(
        main_from, f"FROM {table} TABLESAMPLE SYSTEM ({percent:.6f}) REPEATABLE (1) ", 1
    )
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM ({sampled}) AS sampled", params)
        (count,) = cursor.fetchone()
    return round(count * 100.0 / percent)
