"""Deletion notices after delivery: exactly the licenses that received an affected post get it,
with the pseudonym they received, once; overdue notices stop extracts and downloads until
acknowledged; extracts holding the post are withdrawn."""

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone

from licensing.models import DeletionNotice, Extract, NoticeItem
from licensing.services import compliance, downloads, extracts
from licensing.services.delivery import Pseudonymizer
from marketplace.consent.ledger import parse_message, record_and_apply
from marketplace.errors import Conflict, InvalidInput, NotAllowed
from marketplace.services.actor import Actor
from tests.factories import OrganizationFactory
from tests.factories_corpus import CreatorFactory, DatasetFactory, PostFactory
from tests.factories_licensing import OfferFactory, active_license_for
from tests.licensing.extract_helpers import run_inline
from tests.marketplace.consent.messages import message

pytestmark = pytest.mark.django_db


def signal(kind: str, subject_id: int, **options: Any) -> None:
    event_at = timezone.now() - timedelta(seconds=5)
    record_and_apply(parse_message(message(kind, subject_id, event_at, **options)))


class World:
    """Three vendors on one dataset: `english` and `german` licensed different languages (and
    extracted), `idle` licensed everything but never extracted."""

    def __init__(self) -> None:
        self.alice = CreatorFactory()
        self.bob = CreatorFactory()
        self.alice_en = [PostFactory(author=self.alice, lang="en") for _ in range(3)]
        self.bob_en = PostFactory(author=self.bob, lang="en")
        self.bob_de = PostFactory(author=self.bob, lang="de")
        dataset = DatasetFactory(
            fields_offered=["post_id", "created_at", "text", "lang", "author_id", "geo"]
        )
        offer = OfferFactory(
            dataset=dataset,
            license_fee_minor=100,
            price_per_1000_records=Decimal("0"),
            allowed_purposes=["training", "evaluation"],
        )
        self.english = active_license_for(
            OrganizationFactory(), offer=offer, scope={"languages": ["en"]}
        )
        self.german = active_license_for(
            OrganizationFactory(),
            offer=offer,
            scope={"languages": ["de"]},
            purposes=("training", "evaluation"),
        )
        self.idle = active_license_for(OrganizationFactory(), offer=offer)
        self.english_extract = self.extract(self.english)
        self.german_extract = self.extract(self.german)
        assert compliance.process_ledger() == 0  # nothing happened after delivery yet

    @staticmethod
    def extract(license_: Any) -> Extract:
        started = extracts.start_extract(
            actor=Actor(user=license_.terms_accepted_by), license_=license_, format_="jsonl.zst"
        )
        return run_inline(started)


@pytest.fixture
def world(db: None) -> World:
    return World()


def items_of(license_: Any) -> list[tuple[str, str]]:
    return sorted(NoticeItem.objects.filter(license=license_).values_list("pseudonym", "reason"))


def as_delivered(license_: Any, post: Any) -> str:
    return Pseudonymizer.for_license(license_.pseudonym_key)("post", post.platform_id)


def test_a_deleted_post_is_noticed_to_exactly_the_licenses_that_received_it_once(
    world: World,
) -> None:
    post = world.alice_en[0]
    signal("delete", post.platform_id, author_id=world.alice.platform_id)
    assert compliance.process_ledger() == 1
    assert items_of(world.english) == [(as_delivered(world.english, post), "deleted")]
    assert items_of(world.german) == [] and items_of(world.idle) == []
    notice = DeletionNotice.objects.get()
    assert notice.license == world.english
    assert notice.deadline - notice.created_at >= timedelta(hours=71)
    # Running again, or replaying the same message, adds nothing.
    assert compliance.process_ledger() == 0
    signal("delete", post.platform_id, author_id=world.alice.platform_id)
    assert compliance.process_ledger() == 0
    assert NoticeItem.objects.count() == 1


def test_an_account_going_private_notices_all_its_delivered_posts(world: World) -> None:
    signal("user_protect", world.bob.platform_id)
    assert compliance.process_ledger() == 2
    assert items_of(world.english) == [
        (as_delivered(world.english, world.bob_en), "account_private")
    ]
    assert items_of(world.german) == [(as_delivered(world.german, world.bob_de), "account_private")]


def test_withdrawn_consent_matters_only_to_licenses_using_that_purpose(world: World) -> None:
    signal("ai_opt_out", world.bob.platform_id, purposes=["evaluation"])
    compliance.process_ledger()
    assert items_of(world.english) == []  # licensed for training only
    assert items_of(world.german) == [
        (as_delivered(world.german, world.bob_de), "consent_withdrawn")
    ]


def test_a_change_undone_before_processing_notices_nothing(world: World) -> None:
    signal("user_protect", world.alice.platform_id)
    later = timezone.now()
    record_and_apply(parse_message(message("user_unprotect", world.alice.platform_id, later)))
    assert compliance.process_ledger() == 0
    assert not DeletionNotice.objects.exists()


def test_an_edit_notices_the_outdated_copy_although_the_post_stays_eligible(
    world: World,
) -> None:
    post = world.alice_en[1]
    signal("tweet_edit", post.platform_id, author_id=world.alice.platform_id, edit_id=77)
    compliance.process_ledger()
    assert items_of(world.english) == [(as_delivered(world.english, post), "edited")]


def test_the_extract_that_delivered_the_post_is_withdrawn_and_its_files_deleted(
    world: World, django_capture_on_commit_callbacks: Any
) -> None:
    extract = world.english_extract
    part_name = f"{extract.storage_prefix}/{extract.manifest['files'][0]['name']}"
    assert extracts.extract_storage().exists(part_name)
    signal("delete", world.alice_en[2].platform_id, author_id=world.alice.platform_id)
    with django_capture_on_commit_callbacks(execute=True):
        compliance.process_ledger()
    extract.refresh_from_db()
    assert extract.withdrawn_at is not None
    assert not extracts.extract_storage().exists(part_name)
    with pytest.raises(Conflict) as error:
        downloads.authorize_download(
            actor=Actor.system(), extract=extract, file_name=extract.manifest["files"][0]["name"]
        )
    assert error.value.code == "extract_withdrawn"
    world.german_extract.refresh_from_db()
    assert world.german_extract.withdrawn_at is None


def test_an_overdue_notice_blocks_extracts_and_downloads_until_acknowledged(
    world: World,
) -> None:
    signal("delete", world.bob_de.platform_id, author_id=world.bob.platform_id)
    compliance.process_ledger()
    notice = DeletionNotice.objects.get(license=world.german)
    # Within the deadline nothing is blocked...
    extracts.ensure_deliverable(world.german)
    # ...after it, starting an extract is refused with a clear code.
    after_deadline = notice.deadline + timedelta(seconds=1)
    with pytest.raises(NotAllowed) as error:
        extracts.ensure_deliverable(world.german, now=after_deadline)
    assert error.value.code == "compliance_overdue"
    assert compliance.notice_state(notice, now=after_deadline) == "overdue"
    with pytest.raises(InvalidInput):
        compliance.acknowledge_notice(actor=Actor.system(), notice=notice, statement=" ")
    with pytest.raises(InvalidInput):
        compliance.acknowledge_notice(
            actor=Actor.system(), notice=notice, statement="Deleted.", deletion_log_sha256="xyz"
        )
    compliance.acknowledge_notice(
        actor=Actor(user=world.german.terms_accepted_by),
        notice=notice,
        statement="Deleted from our training store and backups.",
        deletion_log_sha256="a" * 64,
    )
    extracts.ensure_deliverable(world.german, now=after_deadline)
    assert compliance.notice_state(notice) == "acknowledged"
    with pytest.raises(Conflict):
        compliance.acknowledge_notice(actor=Actor.system(), notice=notice, statement="Again.")


# --- API ---------------------------------------------------------------------------------------


def client_of(license_: Any) -> Any:
    from tests.conftest import client_for_user

    return client_for_user(license_.terms_accepted_by)


def test_the_licensee_lists_downloads_and_acknowledges_its_notices(world: World) -> None:
    signal("user_protect", world.alice.platform_id)
    compliance.process_ledger()
    license_ = world.english
    client = client_of(license_)
    base = f"/api/v1/orgs/{license_.organization.slug}/licenses/{license_.pk}/compliance/"
    listed = client.get(base)
    assert listed.status_code == 200
    [notice] = listed.data["results"]
    assert notice["state"] == "pending" and notice["items"] == 3
    assert notice["reasons"] == {"account_private": 3}
    assert client.get(base + "?state=acknowledged").data["results"] == []
    assert client.get(base + "?state=bogus").status_code == 400

    csv_body = client.get(f"{base}{notice['id']}/pseudonyms.csv").content.decode()
    assert csv_body.splitlines()[0] == "pseudonym,reason"
    assert sorted(line.split(",")[0] for line in csv_body.splitlines()[1:]) == sorted(
        as_delivered(license_, post) for post in world.alice_en
    )

    missing_statement = client.post(f"{base}{notice['id']}/ack/", {}, format="json")
    assert missing_statement.status_code == 400 and "statement" in missing_statement.data["fields"]
    acked = client.post(
        f"{base}{notice['id']}/ack/", {"statement": "Deleted everywhere."}, format="json"
    )
    assert acked.status_code == 200 and acked.data["state"] == "acknowledged"
    assert (
        client.post(
            f"{base}{notice['id']}/ack/", {"statement": "Again."}, format="json"
        ).status_code
        == 409
    )


def test_an_overdue_notice_answers_403_compliance_overdue_on_the_extract_route(
    world: World,
) -> None:
    signal("delete", world.bob_en.platform_id, author_id=world.bob.platform_id)
    compliance.process_ledger()
    DeletionNotice.objects.update(deadline=timezone.now() - timedelta(minutes=1))
    license_ = world.english
    response = client_of(license_).post(
        f"/api/v1/orgs/{license_.organization.slug}/licenses/{license_.pk}/extracts/",
        {"format": "parquet"},
        format="json",
    )
    assert response.status_code == 403
    assert response.data["code"] == "compliance_overdue"


# --- Webhooks ----------------------------------------------------------------------------------


class Receiver:
    """A vendor's endpoint on loopback: records what it receives, answers `status`."""

    def __init__(self, status: int = 200) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, HTTPServer

        received = self.received = []
        answer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                received.append((dict(self.headers), body))
                self.send_response(answer.status)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.status = status
        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/commonplace"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Any:
    endpoint = Receiver()
    yield endpoint
    endpoint.close()


def test_a_registered_webhook_gets_each_new_notice_signed(
    world: World, receiver: Receiver, django_capture_on_commit_callbacks: Any
) -> None:
    import hashlib
    import hmac

    import orjson

    from licensing.services import compliance_webhooks

    license_ = world.english
    client = client_of(license_)
    base = f"/api/v1/orgs/{license_.organization.slug}/compliance-webhooks/"
    assert client.post(base, {"url": "ftp://example.test/x"}, format="json").status_code == 400
    created = client.post(base, {"url": receiver.url}, format="json")
    assert created.status_code == 201, created.data
    secret = created.data["secret"]
    assert "secret" not in client.get(base).data["results"][0]

    signal("delete", world.alice_en[0].platform_id, author_id=world.alice.platform_id)
    with django_capture_on_commit_callbacks() as callbacks:
        compliance.process_ledger()
    # Two things wait for the commit: deleting the withdrawn extract's files, and queueing
    # the one webhook delivery for the one notice.
    assert len(callbacks) == 2
    notice = DeletionNotice.objects.get()
    assert compliance_webhooks.deliver_notice(notice.pk) == 1
    [(headers, body)] = receiver.received
    timestamp, signed = (
        part.split("=", 1)[1] for part in headers["Commonplace-Signature"].split(",")
    )
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    assert hmac.compare_digest(signed, expected.hexdigest())
    payload = orjson.loads(body)
    assert payload["notice"]["id"] == notice.pk and payload["notice"]["items"] == 1

    # An endpoint that fails makes the delivery raise, so the task retries it.
    receiver.status = 500
    with pytest.raises(compliance_webhooks.WebhookDeliveryFailed):
        compliance_webhooks.deliver_notice(notice.pk)
    assert client.get(base).data["results"][0]["last_status"].startswith("failed")
