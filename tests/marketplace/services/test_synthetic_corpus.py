"""Writing the synthetic corpus to files and to the database: both paths give the same corpus."""

from pathlib import Path
from typing import Any

import pytest

from marketplace.corpus.generator import CorpusSpec
from marketplace.models import Creator, LedgerEntry, Post, PostVersion
from marketplace.services.compliance_import import import_compliance_events
from marketplace.services.corpus_import import import_post_pages
from marketplace.services.synthetic_corpus import (
    compliance_path_for,
    load_into_database,
    write_twitter_v2,
)

pytestmark = pytest.mark.django_db
SPEC = CorpusSpec(posts=1500, creators=150, seed=9)


def corpus_state() -> dict[str, Any]:
    post_fields = [
        "platform_id", "author__platform_id", "created_at", "text", "lang", "hashtags",
        "mentions", "kind", "referenced_platform_id", "possibly_sensitive", "geo",
        "version_platform_id", "is_deleted", "is_dropped", "withheld_countries",
        "is_geo_scrubbed",
    ]  # fmt: skip
    creator_fields = [
        "platform_id", "handle", "is_deleted", "is_suspended", "is_protected",
        "withheld_countries", "consent_training", "consent_fine_tuning", "consent_evaluation",
        "consent_analytics", "compensation_opt_in",
    ]  # fmt: skip
    return {
        "posts": list(Post.objects.order_by("platform_id").values_list(*post_fields)),
        "creators": list(Creator.objects.order_by("platform_id").values_list(*creator_fields)),
        "versions": sorted(PostVersion.objects.values_list("post__platform_id", "text")),
        "ledger": LedgerEntry.objects.exclude(kind__endswith="_observed").count(),
    }


def test_the_sibling_file_name_for_compliance_events() -> None:
    assert compliance_path_for(Path("/x/c.jsonl.gz")) == Path("/x/c.compliance.jsonl.gz")
    assert compliance_path_for(Path("/x/c.jsonl")) == Path("/x/c.compliance.jsonl")


def test_files_and_the_fast_path_give_the_same_corpus(tmp_path: Path) -> None:
    # given the corpus written as files and imported with the real importers
    out = tmp_path / "corpus.jsonl.gz"
    report, events_path = write_twitter_v2(spec=SPEC, out=out)
    import gzip

    with gzip.open(out, "rb") as lines:
        posts = import_post_pages(lines=lines)
    with gzip.open(events_path, "rb") as lines:
        events = import_compliance_events(lines=lines)
    via_files = corpus_state()
    assert (posts.error_count, events.error_count, posts.created) == (0, 0, 1500)
    assert report.events == events.lines
    # when the same spec is generated straight into an empty database
    Creator.objects.all().delete()
    LedgerEntry.objects.all().delete()
    load = load_into_database(spec=SPEC)
    # then the corpus is the same
    assert corpus_state() == via_files
    assert (load.posts.created, load.compliance.error_count) == (1500, 0)
    assert Creator.objects.count() == 150
    assert Post.objects.filter(kind="retweet").exclude(text="").count() == 0


def test_loading_twice_changes_nothing() -> None:
    load_into_database(spec=SPEC)
    before = corpus_state(), LedgerEntry.objects.count()
    again = load_into_database(spec=SPEC)
    assert (corpus_state(), LedgerEntry.objects.count()) == before
    assert (again.posts.created, again.posts.updated, again.compliance.recorded) == (0, 0, 0)
