from collections.abc import Iterator
from typing import Any

import pytest

from licensing.models import LicenseRequest, Offer
from licensing.services.requests import create_license_request, submit_license_request
from marketplace.celery import app as celery_app
from marketplace.models import MembershipRole
from marketplace.services.actor import Actor
from tests.factories import MembershipFactory
from tests.factories_corpus import PostFactory
from tests.factories_licensing import OfferFactory


@pytest.fixture
def offer(db: None) -> Offer:
    offer = OfferFactory()
    # Five eligible English posts (the default opt-out basis admits unset consent).
    for _ in range(5):
        PostFactory(lang="en")
    PostFactory(lang="fr")  # outside the dataset's base scope
    return offer


@pytest.fixture
def reviewers(operator: Any) -> list[Any]:
    return [
        MembershipFactory(organization=operator.organization, role=MembershipRole.REVIEWER).user
        for _ in range(2)
    ]


REQUEST_TERMS = {
    "scope": {"languages": ["en"]},
    "purposes": ["training"],
    "fields": ["text", "post_id"],
    "record_cap": 1000,
    "intended_use": "Train a small assistant.",
    "contact_email": "legal@vendor.test",
}


@pytest.fixture
def draft(vendor: Any, offer: Offer) -> LicenseRequest:
    return create_license_request(
        actor=Actor(user=vendor.admin),
        organization=vendor.organization,
        dataset=offer.dataset,
        **REQUEST_TERMS,
    )


@pytest.fixture
def submitted(vendor: Any, draft: LicenseRequest) -> LicenseRequest:
    return submit_license_request(actor=Actor(user=vendor.admin), license_request=draft)


@pytest.fixture
def eager_tasks() -> Iterator[None]:
    """Queued tasks run in this process when they are queued (after commit), through the real
    task function."""
    conf = celery_app.conf
    before = {name: conf[name] for name in ("task_always_eager", "task_eager_propagates")}
    conf.update(task_always_eager=True, task_eager_propagates=True)
    yield
    conf.update(before)
