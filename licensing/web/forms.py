"""Forms of the vendor portal: input parsing and labels only; the services decide the rules."""

from datetime import date
from typing import Any

from django import forms

from licensing.models import ExtractFormat, Offer
from marketplace.models import ConsentPurpose, Dataset


def _words(raw: str) -> list[str]:
    """A comma- or space-separated list, as typed."""
    return [word for word in raw.replace(",", " ").split() if word]


def _midnight(day: date | None) -> str | None:
    return f"{day.isoformat()}T00:00:00+00:00" if day else None


class ScopeForm(forms.Form):
    """The scope builder: narrows the dataset's base scope. Also the first half of the request
    form, so the scope previewed is the scope requested."""

    date_from = forms.DateField(
        label="Posted on or after", required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    date_to = forms.DateField(
        label="Posted before", required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    languages = forms.CharField(
        label="Languages",
        required=False,
        max_length=200,
        help_text="ISO 639-1 codes separated by commas, e.g. en, de. Empty: every language "
        "the dataset offers.",
    )
    hashtags_any = forms.CharField(
        label="Any of these hashtags", required=False, max_length=500, help_text="Without the #."
    )
    keywords = forms.CharField(
        label="Any of these keywords", required=False, max_length=500, help_text="Case-insensitive."
    )
    exclude_sensitive = forms.BooleanField(
        label="Leave out posts marked sensitive", required=False, initial=True
    )

    def __init__(self, *args: Any, dataset: Dataset, offer: Offer | None, **kwargs: Any) -> None:
        base = dataset.base_scope or {}
        kwargs.setdefault(
            "initial",
            {
                "languages": ", ".join(base.get("languages", [])),
                "hashtags_any": " ".join(base.get("hashtags_any", [])),
                "keywords": " ".join(base.get("keywords", [])),
                "exclude_sensitive": base.get("exclude_sensitive", True),
            },
        )
        super().__init__(*args, **kwargs)
        self.dataset = dataset
        allowed = list(offer.allowed_purposes) if offer else []
        self.fields["purposes"] = forms.MultipleChoiceField(
            label="Purposes",
            choices=[(p, ConsentPurpose(p).label) for p in allowed],
            widget=forms.CheckboxSelectMultiple,
            initial=allowed[:1],
            help_text="Only posts whose creators allow every purpose you choose are counted.",
        )

    def scope(self) -> dict[str, Any]:
        """The scope as the services take it; the base scope's fixed parts are kept."""
        data = self.cleaned_data
        scope: dict[str, Any] = {
            key: value
            for key, value in (self.dataset.base_scope or {}).items()
            if key in ("hashtags_all", "hashtags_none", "kinds")
        }
        scope.update(
            {
                "date_from": _midnight(data.get("date_from")),
                "date_to": _midnight(data.get("date_to")),
                "languages": _words(data.get("languages", "")),
                "hashtags_any": [tag.lstrip("#") for tag in _words(data.get("hashtags_any", ""))],
                "keywords": _words(data.get("keywords", "")),
                "exclude_sensitive": bool(data.get("exclude_sensitive")),
            }
        )
        return {key: value for key, value in scope.items() if value not in (None, [], "")}


class LicenseRequestForm(ScopeForm):
    record_cap = forms.IntegerField(
        label="Most records you need", min_value=1, max_value=10**12, initial=10_000
    )
    term_days = forms.IntegerField(
        label="Term in days",
        min_value=1,
        max_value=3650,
        required=False,
        help_text="Empty: the offer's term.",
    )
    intended_use = forms.CharField(
        label="What you will use the data for", max_length=5000, widget=forms.Textarea({"rows": 3})
    )
    contact_email = forms.EmailField(label="Contact e-mail for this request", max_length=254)

    def __init__(self, *args: Any, dataset: Dataset, offer: Offer | None, **kwargs: Any) -> None:
        super().__init__(*args, dataset=dataset, offer=offer, **kwargs)
        offered = list(dataset.fields_offered)
        self.fields["fields"] = forms.MultipleChoiceField(
            label="Fields",
            choices=[(name, name) for name in offered],
            widget=forms.CheckboxSelectMultiple,
            initial=offered,
        )

    def terms(self) -> dict[str, Any]:
        data = self.cleaned_data
        return {
            "scope": self.scope(),
            "purposes": list(data["purposes"]),
            "fields": list(data["fields"]),
            "record_cap": data["record_cap"],
            "term_days": data.get("term_days"),
            "intended_use": data["intended_use"],
            "contact_email": data["contact_email"],
        }


class AcceptTermsForm(forms.Form):
    terms_version = forms.CharField(widget=forms.HiddenInput, max_length=32)
    accept = forms.BooleanField(
        label="I have read the license terms and accept them on behalf of my organization",
        error_messages={"required": "Tick the box to accept the terms."},
    )


class StartExtractForm(forms.Form):
    format = forms.ChoiceField(
        label="File format", choices=ExtractFormat.choices, initial=ExtractFormat.PARQUET
    )


class AcknowledgeNoticeForm(forms.Form):
    statement = forms.CharField(
        label="What you deleted, and from where",
        max_length=5000,
        widget=forms.Textarea({"rows": 3}),
    )
    deletion_log_sha256 = forms.CharField(
        label="SHA-256 of your deletion log (optional)", required=False, max_length=64
    )


class ApiKeyForm(forms.Form):
    name = forms.CharField(label="Name", max_length=100, help_text="Say where the key is used.")
    scopes = forms.MultipleChoiceField(
        label="Scopes",
        choices=[
            ("read", "read: catalog, licenses, usage"),
            ("extract", "extract: start extracts"),
            ("download", "download: download extract files"),
        ],
        widget=forms.CheckboxSelectMultiple,
        initial=["read"],
    )
