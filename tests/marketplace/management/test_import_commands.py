"""The import and generate commands, end to end on files (plain and gzip)."""

import gzip
import json
import shutil
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from marketplace.models import Creator, LedgerEntry, Post

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "x_api"
pytestmark = pytest.mark.django_db


def run(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def counts(output: str, path: Path) -> dict[str, int]:
    prefix = f"{path}: "
    (summary,) = [row[len(prefix) :] for row in output.splitlines() if row.startswith(prefix)]
    return json.loads(summary)


def gzipped(source: Path, directory: Path) -> Path:
    target = directory / f"{source.name}.gz"
    with source.open("rb") as plain, gzip.open(target, "wb") as packed:
        shutil.copyfileobj(plain, packed)
    return target


def test_import_posts_and_compliance_from_gzip_and_plain_files(tmp_path: Path) -> None:
    # given the fixtures, the pages gzipped
    pages = gzipped(FIXTURES / "pages.jsonl", tmp_path)
    events = FIXTURES / "compliance.jsonl"
    # when
    posts_out, posts_err = run("import_posts", str(pages), str(FIXTURES / "late_post.jsonl"))
    events_out, events_err = run("import_compliance", str(events))
    # then
    assert counts(posts_out, pages)["created"] == 6
    assert counts(posts_out, FIXTURES / "late_post.jsonl")["created"] == 1
    assert f"{pages}:5: not valid JSON" in posts_err
    assert counts(events_out, events)["recorded"] == 24
    assert f"{events}:24: unknown event type 'user_explode'" in events_err
    assert Post.objects.get(platform_id=1460323737035677790).is_deleted is True
    assert Post.objects.get(platform_id=1460323737035677701).is_deleted is True


def test_running_the_imports_twice_changes_nothing(tmp_path: Path) -> None:
    run("import_posts", str(FIXTURES / "pages.jsonl"))
    run("import_compliance", str(FIXTURES / "compliance.jsonl"))
    before = (
        list(Post.objects.values()),
        list(Creator.objects.values()),
        LedgerEntry.objects.count(),
    )
    posts_out, _ = run("import_posts", str(FIXTURES / "pages.jsonl"))
    events_out, _ = run("import_compliance", str(FIXTURES / "compliance.jsonl"))
    after = list(Post.objects.values()), list(Creator.objects.values()), LedgerEntry.objects.count()
    assert after == before
    assert counts(posts_out, FIXTURES / "pages.jsonl")["unchanged"] == 6
    assert counts(events_out, FIXTURES / "compliance.jsonl")["recorded"] == 0


def test_a_missing_file_is_a_command_error() -> None:
    with pytest.raises(CommandError, match="no such file"):
        run("import_posts", "/nonexistent/pages.jsonl")


def test_generate_twitter_v2_then_import_equals_generate_into_the_database(tmp_path: Path) -> None:
    # given a generated corpus written to files
    out = tmp_path / "corpus.jsonl.gz"
    printed, _ = run(
        "generate_corpus", "--posts", "400", "--creators", "40", "--seed", "3",
        "--format", "twitter-v2", "--out", str(out),
    )  # fmt: skip
    events = tmp_path / "corpus.compliance.jsonl.gz"
    assert f"compliance events: {events}" in printed
    # when both files are imported
    run("import_posts", str(out))
    run("import_compliance", str(events))
    imported = sorted(Post.objects.values_list("platform_id", "text", "is_deleted", "is_dropped"))
    # and, in an empty corpus, the same spec is generated into the database
    Creator.objects.all().delete()
    LedgerEntry.objects.all().delete()
    loaded_out, _ = run("generate_corpus", "--posts", "400", "--creators", "40", "--seed", "3")
    # then
    assert '"created": 400' in loaded_out
    assert sorted(Post.objects.values_list("platform_id", "text", "is_deleted", "is_dropped")) == (
        imported
    )


def test_generate_refuses_out_without_twitter_v2(tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="--out is only for --format twitter-v2"):
        run("generate_corpus", "--posts", "1", "--creators", "1", "--out", str(tmp_path / "x"))
