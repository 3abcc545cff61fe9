"""Abuse: what a hostile or careless client can send, and that each answer is a clean 4xx that
changes nothing. Key guessing (429 per prefix and address, on the API and on Delta Sharing's
bearer token alike), signed download links (403), path tricks in file names (404, nothing
metered), oversized bodies (413, nothing ingested) and junk scopes (400 naming the field).
docs/SECURITY.md maps each threat to these tests."""

import json
import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.core import signing
from django.core.files.base import ContentFile
from django.test import Client, override_settings
from freezegun import freeze_time

from licensing.models import Extract, ExtractDownload, LicenseRequest, UsageEvent, UsageMeter
from licensing.services import extracts
from licensing.services.file_delivery import TOKEN_SALT, delivery_url, extract_storage
from marketplace.api.views_accounts import SignInThrottle
from marketplace.models import AuditEvent, LedgerEntry, Post
from marketplace.services.actor import Actor
from tests.conftest import Tenant
from tests.factories_licensing import OfferFactory
from tests.licensing.extract_helpers import generated_offer, licensed, run_inline

pytestmark = [pytest.mark.abuse, pytest.mark.django_db]

ORG_ROUTE = "/api/v1/orgs/{slug}/license-requests/"
ATTACKER = "203.0.113.7"
OWNER = "198.51.100.20"


def guess_for(raw_key: str) -> str:
    """A wrong key with the same public prefix as `raw_key`."""
    tag, prefix, _secret = raw_key.split("_", 2)
    return f"{tag}_{prefix}_{'A' * 43}"


def get_with_key(raw_key: str, url: str, address: str, **extra: str) -> Any:
    return Client().get(url, HTTP_AUTHORIZATION=f"Api-Key {raw_key}", REMOTE_ADDR=address, **extra)


# --- API key guessing -------------------------------------------------------------------------

# Two doors take a key: `Authorization: Api-Key` on the API, and the Delta Sharing bearer token.
# Both are guarded by the same counts, each door answering 429 in its own error shape.
DELTA_SHARES = "/delta-sharing/shares"
DOORS = ["api-key", "delta-sharing-bearer"]
THROTTLED_BODY = {
    "api-key": {
        "code": "throttled",
        "detail": "Too many failed API-key attempts from this address. "
        "Expected available in 240 seconds.",
    },
    "delta-sharing-bearer": {
        "errorCode": "RESOURCE_EXHAUSTED",
        "message": "Too many failed API-key attempts from this address. Try again in 240 seconds.",
    },
}


def get_shares_with_token(raw_key: str, address: str, **extra: str) -> Any:
    return Client().get(
        DELTA_SHARES, HTTP_AUTHORIZATION=f"Bearer {raw_key}", REMOTE_ADDR=address, **extra
    )


def sender(door: str, tenant: Tenant) -> Callable[..., Any]:
    """`send(raw_key, address, **extra)`: one authenticated GET through the door; a right key
    answers 200."""
    if door == "delta-sharing-bearer":
        return get_shares_with_token
    url = ORG_ROUTE.format(slug=tenant.organization.slug)
    return lambda raw_key, address, **extra: get_with_key(raw_key, url, address, **extra)


@pytest.mark.parametrize("door", DOORS)
@override_settings(API_KEY_FAILURES_PER_PREFIX=3, API_KEY_FAILURE_WINDOW_SECONDS=300)
def test_guessing_a_keys_secret_is_throttled_per_prefix_and_address(
    vendor: Tenant, door: str
) -> None:
    send = sender(door, vendor)
    guess = guess_for(vendor.raw_key)
    # 2026-01-01 00:00 UTC is a multiple of the 300 s window, so 12:01:00 leaves 240 s.
    with freeze_time("2026-01-01 12:01:00"):
        # Given three wrong guesses for the key's prefix from one address
        assert [send(guess, ATTACKER).status_code for _ in range(3)] == [401] * 3

        # When that address tries again, even with the right key
        throttled = send(guess, ATTACKER)
        right_key_from_attacker = send(vendor.raw_key, ATTACKER)

        # Then both are 429 (a 200 would confirm a correct guess), with the time left, in the
        # door's error shape
        assert throttled.status_code == 429
        assert throttled["Retry-After"] == "240"
        assert throttled.json() == THROTTLED_BODY[door]
        assert right_key_from_attacker.status_code == 429

        # And the owner, calling from elsewhere, is not locked out
        assert send(vendor.raw_key, OWNER).status_code == 200

    # And the next window lets the address try again
    with freeze_time("2026-01-01 12:05:00"):
        assert send(vendor.raw_key, ATTACKER).status_code == 200


@pytest.mark.parametrize("door", DOORS)
@override_settings(API_KEY_FAILURES_PER_PREFIX=3)
def test_a_spoofed_forwarded_for_header_does_not_reset_the_count(vendor: Tenant, door: str) -> None:
    send = sender(door, vendor)
    guess = guess_for(vendor.raw_key)
    statuses = [
        send(guess, ATTACKER, HTTP_X_FORWARDED_FOR=f"10.0.0.{n}").status_code for n in range(5)
    ]
    assert statuses == [401, 401, 401, 429, 429]


@pytest.mark.parametrize("door", DOORS)
@override_settings(API_KEY_FAILURES_PER_PREFIX=100, API_KEY_FAILURES_PER_ADDRESS=4)
def test_rotating_prefixes_hits_the_per_address_limit(vendor: Tenant, door: str) -> None:
    send = sender(door, vendor)
    guesses = [f"cpk_{n:012d}_{'B' * 43}" for n in range(4)] + ["not-even-a-key"]
    assert [send(g, ATTACKER).status_code for g in guesses] == [401] * 4 + [429]
    assert send(vendor.raw_key, OWNER).status_code == 200


@pytest.mark.parametrize("door", DOORS)
@override_settings(API_KEY_FAILURES_PER_PREFIX=3)
def test_successful_calls_do_not_count_towards_the_limit(vendor: Tenant, door: str) -> None:
    send = sender(door, vendor)
    statuses = [send(vendor.raw_key, ATTACKER).status_code for _ in range(6)]
    assert statuses == [200] * 6


@override_settings(API_KEY_FAILURES_PER_PREFIX=3)
def test_bearer_tokens_and_api_keys_draw_on_one_count(vendor: Tenant) -> None:
    # Splitting guesses between the two doors buys an attacker nothing.
    url = ORG_ROUTE.format(slug=vendor.organization.slug)
    guess = guess_for(vendor.raw_key)
    assert [get_with_key(guess, url, ATTACKER).status_code for _ in range(2)] == [401, 401]
    assert get_shares_with_token(guess, ATTACKER).status_code == 401

    assert get_shares_with_token(guess, ATTACKER).status_code == 429
    assert get_with_key(guess, url, ATTACKER).status_code == 429


@override_settings(API_KEY_FAILURES_PER_ADDRESS=3)
def test_a_delta_sharing_request_without_a_bearer_token_is_not_an_attempt(
    vendor: Tenant,
) -> None:
    missing = [Client().get(DELTA_SHARES, REMOTE_ADDR=ATTACKER).status_code for _ in range(4)]
    assert missing == [401] * 4
    assert get_shares_with_token(vendor.raw_key, ATTACKER).status_code == 200


def test_password_guessing_is_throttled_per_address(monkeypatch: pytest.MonkeyPatch) -> None:
    # SignInThrottle: 30 a minute per address; REMOTE_ADDR, not a client-chosen header. Its
    # clock is pinned (freezegun cannot patch DRF's class-level `timer = time.time`).
    monkeypatch.setattr(SignInThrottle, "timer", staticmethod(lambda: 1_767_268_800.0))

    def sign_in(address: str, n: int) -> int:
        return (
            Client()
            .post(
                "/api/v1/auth/session/",
                {"email": "known@example.test", "password": f"guess-{n}"},
                content_type="application/json",
                REMOTE_ADDR=address,
                HTTP_X_FORWARDED_FOR=f"10.1.0.{n % 250}",
            )
            .status_code
        )

    assert [sign_in(ATTACKER, n) for n in range(31)] == [400] * 30 + [429]
    assert sign_in(OWNER, 0) == 400


@pytest.fixture
def redis_cache(settings: Any) -> None:
    """The production cache: Redis, shared by every web process. Its own key prefix, and no
    clear(): the database may be the broker's too."""
    broker = os.environ.get("CELERY_BROKER_URL", "")
    if not broker.startswith("redis://"):
        pytest.skip("needs Redis: set CELERY_BROKER_URL=redis://...")
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": broker,
            "KEY_PREFIX": f"abuse-test-{uuid.uuid4().hex}",
        }
    }


@pytest.mark.redis
@override_settings(API_KEY_FAILURES_PER_PREFIX=2)
def test_the_count_is_shared_through_redis(vendor: Tenant, redis_cache: None) -> None:
    url = ORG_ROUTE.format(slug=vendor.organization.slug)
    guess = guess_for(vendor.raw_key)
    assert [get_with_key(guess, url, ATTACKER).status_code for _ in range(3)] == [401, 401, 429]
    assert get_with_key(vendor.raw_key, url, OWNER).status_code == 200


def test_a_cache_outage_fails_open_rather_than_500(vendor: Tenant, settings: Any) -> None:
    # Nothing listens on port 1: every cache call fails to connect.
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
        }
    }
    url = ORG_ROUTE.format(slug=vendor.organization.slug)
    assert get_with_key(guess_for(vendor.raw_key), url, ATTACKER).status_code == 401
    assert get_with_key(vendor.raw_key, url, ATTACKER).status_code == 200


# --- signed download links --------------------------------------------------------------------

STORAGE_NAME = "extracts/7/part-00000.parquet"
OTHER_NAME = "extracts/8/part-00000.parquet"


@pytest.fixture
def two_files(settings: Any, tmp_path: Path) -> None:
    settings.STORAGES = {
        **settings.STORAGES,
        "extracts": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "extracts")},
        },
    }
    extract_storage().save(STORAGE_NAME, ContentFile(b"licensee seven"))
    extract_storage().save(OTHER_NAME, ContentFile(b"licensee eight"))


def link_path(storage_name: str = STORAGE_NAME, **kwargs: Any) -> str:
    return urlsplit(delivery_url(storage_name, download_name="part-00000.parquet", **kwargs)).path


def token_of(path: str) -> str:
    return path.rsplit("/", 1)[1]


@pytest.mark.parametrize(
    "cut",
    [
        lambda token: token[:-1],
        lambda token: token[: len(token) // 2],
        lambda token: token.rsplit(":", 1)[0],  # the signature removed
        lambda token: token.rsplit(":", 1)[0] + ":",
        lambda token: ":" + token.rsplit(":", 1)[1],  # the signature alone
    ],
    ids=["last-char", "half", "no-signature", "empty-signature", "signature-only"],
)
def test_a_truncated_link_is_403(two_files: None, cut: Callable[[str], str]) -> None:
    path = link_path()
    response = Client().get(path.replace(token_of(path), cut(token_of(path))))
    assert response.status_code == 403
    assert response.json()["code"] == "delivery_link_invalid"


def test_a_link_serves_only_the_file_it_was_issued_for(two_files: None) -> None:
    mine, other = link_path(), link_path(OTHER_NAME)
    assert b"".join(Client().get(mine).streaming_content) == b"licensee seven"
    assert b"".join(Client().get(other).streaming_content) == b"licensee eight"
    # Grafting one link's signature onto the other's payload gives neither file.
    grafted = token_of(other).rsplit(":", 1)[0] + ":" + token_of(mine).rsplit(":", 1)[1]
    response = Client().get(other.replace(token_of(other), grafted))
    assert response.status_code == 403


def test_a_value_signed_for_another_purpose_is_not_a_link(two_files: None) -> None:
    # The same secret signs other things (sessions, manifests); the salt keeps them apart.
    payload = {"n": STORAGE_NAME, "d": "x.parquet", "x": 2**40}
    for salt in ("", "commonplace.extract-manifest", TOKEN_SALT + "x"):
        token = signing.dumps(payload, salt=salt, compress=True)
        assert Client().get(f"/api/v1/extract-files/{token}").status_code == 403


def test_a_link_used_before_expiry_is_refused_after_it(two_files: None) -> None:
    with freeze_time("2026-01-01 12:00:00"):
        path = link_path(ttl_seconds=60)
    with freeze_time("2026-01-01 12:00:30"):
        assert [Client().get(path).status_code for _ in range(3)] == [200, 200, 200]
    with freeze_time("2026-01-01 12:01:01"):
        response = Client().get(path)
    assert (response.status_code, response.json()["code"]) == (403, "delivery_link_expired")


def test_no_link_outlives_the_ceiling_whatever_expiry_it_carries(two_files: None) -> None:
    # Even a token signed with the right key and a far-future expiry (say, minted by an old
    # release with a longer TTL) dies with the signature's age.
    with freeze_time("2026-01-01 12:00:00"):
        token = signing.dumps(
            {"n": STORAGE_NAME, "d": "x.parquet", "x": 2**40}, salt=TOKEN_SALT, compress=True
        )
        assert Client().get(f"/api/v1/extract-files/{token}").status_code == 200
    with freeze_time("2026-01-01 12:05:01"):
        assert Client().get(f"/api/v1/extract-files/{token}").status_code == 403


# --- path tricks in extract file names --------------------------------------------------------

PATH_TRICKS = [
    "../manifest.json",
    "..%2Fmanifest.json",
    "%2e%2e%2fmanifest.json",
    "%2E%2E/%2E%2E/etc/passwd",
    "./manifest.json",
    "/etc/passwd",
    "%2Fetc%2Fpasswd",
    "manifest.json%00",
    "manifest.json%00.parquet",
    "part-00000.jsonl.zst%00",
    "..%5Cmanifest.json",
    "..\\manifest.json",
    "C:%5Cwindows%5Cwin.ini",
    "%EF%BC%8E%EF%BC%8E%EF%BC%8Fmanifest.json",  # fullwidth "../"
    "manifest%E2%80%A4json",  # one-dot leader for "."
    "MANIFEST.JSON",
    "manifest.json%20",
    "part-00000.jsonl.zst/",
    "%252e%252e%252fmanifest.json",  # double-encoded
]


@pytest.fixture
def ready_extract(vendor: Tenant) -> Extract:
    license_ = licensed(vendor.organization, offer=generated_offer(), record_cap=50)
    extract = extracts.start_extract(
        actor=Actor(user=vendor.admin), license_=license_, format_="jsonl.zst"
    )
    return run_inline(extract)


def test_path_tricks_in_file_names_are_404_and_meter_nothing(
    vendor: Tenant, ready_extract: Extract
) -> None:
    base = f"/api/v1/orgs/{vendor.organization.slug}/extracts/{ready_extract.pk}/files/"
    metered_before = list(UsageEvent.objects.exclude(meter=UsageMeter.API_REQUESTS).values())

    answers = {name: vendor.key_client.get(base + name) for name in PATH_TRICKS}

    assert {name: response.status_code for name, response in answers.items()} == {
        name: 404 for name in PATH_TRICKS
    }
    assert all(
        response.json()["code"] in ("not_found", "file_not_found") for response in answers.values()
    )
    assert not ExtractDownload.objects.exists()
    assert (
        list(UsageEvent.objects.exclude(meter=UsageMeter.API_REQUESTS).values()) == metered_before
    )
    # The real file is still there to prove the route works.
    assert vendor.key_client.get(base + "part-00000.jsonl.zst").status_code == 302


# --- oversized and malformed bodies -----------------------------------------------------------


def ndjson_pages(count: int) -> bytes:
    page = {
        "data": [{"id": "1", "text": "x", "author_id": "2", "created_at": "2024-01-01T00:00:00Z"}]
    }
    return b"\n".join(json.dumps(page).encode() for _ in range(count))


@override_settings(COMMONPLACE_INGEST_MAX_BYTES=2000)
@pytest.mark.parametrize("url", ["/api/v1/platform/posts/", "/api/v1/platform/compliance/"])
@pytest.mark.parametrize("content_type", ["application/x-ndjson", "application/json", "text/plain"])
def test_an_oversized_ingest_body_is_413_with_the_limit_and_ingests_nothing(
    operator: Tenant, url: str, content_type: str
) -> None:
    body = ndjson_pages(40)
    assert len(body) > 2000
    audit_before = AuditEvent.objects.count()

    response = operator.key_client.post(url, body, content_type=content_type)

    assert response.status_code == 413
    assert response.json() == {
        "code": "request_too_large",
        "detail": "The body is larger than 2000 bytes; split it into several requests.",
    }
    assert (Post.objects.count(), LedgerEntry.objects.count()) == (0, 0)
    assert AuditEvent.objects.count() == audit_before


@override_settings(COMMONPLACE_INGEST_MAX_BYTES=2000)
def test_a_declared_oversized_length_is_refused_before_reading(operator: Tenant) -> None:
    response = operator.key_client.generic(
        "POST",
        "/api/v1/platform/posts/",
        b"{}",
        content_type="application/x-ndjson",
        CONTENT_LENGTH="999999999",
    )
    assert response.status_code == 413
    assert Post.objects.count() == 0


@pytest.fixture
def dataset(db: None) -> Any:
    return OfferFactory(
        dataset__slug="public-posts",
        dataset__fields_offered=["post_id", "text", "lang"],
        dataset__base_scope={"languages": ["en"]},
    ).dataset


def request_body(**scope: Any) -> dict[str, Any]:
    return {
        "dataset": "public-posts",
        "scope": scope,
        "purposes": ["training"],
        "fields": ["text"],
        "record_cap": 100,
        "intended_use": "Research.",
        "contact_email": "legal@vendor.test",
    }


@override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=5000)
def test_an_oversized_json_body_is_413_and_creates_nothing(vendor: Tenant, dataset: Any) -> None:
    body = json.dumps(request_body(keywords=["x"] * 5000))
    response = vendor.admin_client.post(
        ORG_ROUTE.format(slug=vendor.organization.slug), body, content_type="application/json"
    )
    assert response.status_code == 413
    assert response.json()["detail"] == (
        "The body is larger than 5000 bytes; split it into several requests."
    )
    assert not LicenseRequest.objects.exists()


def test_deeply_nested_json_is_400_not_500(vendor: Tenant, dataset: Any) -> None:
    body = '{"scope": ' + "[" * 100_000 + "]" * 100_000 + "}"
    response = vendor.admin_client.post(
        ORG_ROUTE.format(slug=vendor.organization.slug), body, content_type="application/json"
    )
    assert (response.status_code, response.json()["code"]) == (400, "parse_error")


def test_deeply_nested_ingest_json_is_a_line_error(operator: Tenant) -> None:
    body = b"[" * 100_000 + b"]" * 100_000
    response = operator.key_client.post(
        "/api/v1/platform/posts/", body, content_type="application/json"
    )
    assert response.status_code == 200
    assert (response.json()["lines"], len(response.json()["errors"])) == (1, 1)
    assert Post.objects.count() == 0


# --- junk in scopes ---------------------------------------------------------------------------

JUNK_SCOPES = {
    "nul-in-keyword": ({"keywords": ["ok", "bad\x00word"]}, "scope.keywords"),
    "control-char": ({"keywords": ["tab\tand\x1bescape"]}, "scope.keywords"),
    "rtl-override": ({"keywords": ["\u202egnp.exe"]}, "scope.keywords"),
    "rtl-isolate": ({"hashtags_none": ["\u2067tag"]}, "scope.hashtags_none"),
    "emoji-hashtag": ({"hashtags_any": ["🔥"]}, "scope.hashtags_any"),
    "nul-language": ({"languages": ["en\x00"]}, "scope.languages"),
    "huge-list": ({"keywords": ["word"] * 100_000}, "scope.keywords"),
    "huge-string": ({"keywords": ["w" * 100_000]}, "scope.keywords"),
    "nested-list": ({"keywords": [[[["deep"]]]]}, "scope.keywords"),
    "object-in-list": ({"languages": [{"$ne": None}]}, "scope.languages"),
    "sql-language": ({"languages": ["en' OR '1'='1"]}, "scope.languages"),
    "sql-hashtag": ({"hashtags_all": ["x; DROP TABLE marketplace_post"]}, "scope.hashtags_all"),
    "sql-date": ({"date_from": "2024-01-01'; --"}, "scope.date_from"),
    "string-for-list": ({"kinds": "original"}, "scope.kinds"),
    "number-for-list": ({"keywords": 5}, "scope.keywords"),
    "bool-for-date": ({"date_to": True}, "scope.date_to"),
    "string-for-bool": ({"exclude_sensitive": "false"}, "scope.exclude_sensitive"),
    "many-unknown-keys": ({f"k{n}": n for n in range(10_000)}, "scope"),
}


@pytest.mark.parametrize(("scope", "field"), JUNK_SCOPES.values(), ids=JUNK_SCOPES.keys())
def test_junk_in_a_license_request_scope_is_400_naming_the_field(
    vendor: Tenant, dataset: Any, scope: dict[str, Any], field: str
) -> None:
    body = request_body()
    body["scope"] = scope
    response = vendor.admin_client.post(
        ORG_ROUTE.format(slug=vendor.organization.slug), body, format="json"
    )
    assert response.status_code == 400, response.content
    assert field in response.json()["fields"], response.json()
    assert not LicenseRequest.objects.exists()


@pytest.mark.parametrize(("scope", "field"), JUNK_SCOPES.values(), ids=JUNK_SCOPES.keys())
def test_junk_in_a_preview_scope_is_400_naming_the_field(
    vendor: Tenant, dataset: Any, scope: dict[str, Any], field: str
) -> None:
    response = vendor.key_client.post(
        "/api/v1/datasets/public-posts/preview/", {"scope": scope}, format="json"
    )
    assert response.status_code == 400, response.content
    assert field in response.json()["fields"]


@pytest.mark.parametrize("scope", ["not an object", ["a", "list"], 42, None])
def test_a_scope_that_is_not_an_object_is_400(vendor: Tenant, dataset: Any, scope: Any) -> None:
    body = request_body()
    body["scope"] = scope
    response = vendor.admin_client.post(
        ORG_ROUTE.format(slug=vendor.organization.slug), body, format="json"
    )
    assert response.status_code == 400
    assert "scope" in response.json()["fields"]


def test_real_world_unicode_in_keywords_is_accepted_and_stored(
    vendor: Tenant, dataset: Any
) -> None:
    # Emoji, right-to-left text with its plain direction marks, and combining accents are
    # what people search for; only control characters and bidi overrides are refused.
    keywords = ["🔥 deals", "\u200f\u05e9\u05dc\u05d5\u05dd\u200e", "café", "naïve"]
    response = vendor.admin_client.post(
        ORG_ROUTE.format(slug=vendor.organization.slug),
        request_body(keywords=keywords),
        format="json",
    )
    assert response.status_code == 201, response.content
    assert LicenseRequest.objects.get().scope["keywords"] == keywords


# --- ids beyond 64 bits -----------------------------------------------------------------------

HUGE_ID = 239512005790388027392  # found by the schema fuzz: a 500 on SQLite's compliance routes


@pytest.mark.parametrize(
    "tail",
    [
        f"licenses/{HUGE_ID}/compliance/{HUGE_ID}/",
        f"licenses/{HUGE_ID}/compliance/1/pseudonyms.csv",
        f"license-requests/{HUGE_ID}/",
        f"licenses/{HUGE_ID}/",
        f"extracts/{HUGE_ID}/",
        f"extracts/{HUGE_ID}/files/manifest.json",
        f"invoices/{HUGE_ID}/",
    ],
)
def test_an_id_beyond_64_bits_is_404(vendor: Tenant, tail: str) -> None:
    response = vendor.admin_client.get(f"/api/v1/orgs/{vendor.organization.slug}/{tail}")
    assert response.status_code == 404


def test_a_list_under_an_id_beyond_64_bits_is_empty(vendor: Tenant) -> None:
    url = f"/api/v1/orgs/{vendor.organization.slug}/licenses/{HUGE_ID}/compliance/"
    response = vendor.admin_client.get(url)
    assert (response.status_code, response.json()["results"]) == (200, [])
