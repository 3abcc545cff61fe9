"""Every admin page that staff use renders for a superuser, with data present."""

from typing import Any

import pytest
from django.contrib import admin
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from licensing.models import DeletionNotice, Extract, ExtractDownload, ExtractPart, License
from licensing.services.requests import decide_license_request
from marketplace.services.actor import Actor
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_every_changelist_and_change_page_renders(submitted: Any, reviewers: Any) -> None:
    decide_license_request(
        actor=Actor(user=reviewers[0]), license_request=submitted, decision="approve"
    )
    license_ = License.objects.get(request=submitted)
    extract = Extract.objects.create(
        organization=license_.organization,
        license=license_,
        format="parquet",
        as_of=timezone.now(),
        record_limit=5,
    )
    ExtractPart.objects.create(
        extract=extract, index=0, first_post_id=1, last_post_id=9, rows_expected=2
    )
    ExtractDownload.objects.create(
        extract=extract,
        organization=license_.organization,
        license=license_,
        file_name="manifest.json",
        bytes=10,
        records=0,
    )
    DeletionNotice.objects.create(
        organization=license_.organization,
        license=license_,
        period_start=timezone.now(),
        deadline=timezone.now(),
    )
    client = Client()
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    for model in admin.site._registry:
        opts = model._meta
        changelist = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
        assert client.get(changelist).status_code == 200, changelist
        if model is DeletionNotice:
            assert client.get(changelist + "?state=overdue").status_code == 200
        first = model.objects.first()
        if first is not None:
            change = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[first.pk])
            assert client.get(change).status_code == 200, change
