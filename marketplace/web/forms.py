"""Forms for the portal pages: input parsing and labels only; the services decide the rules."""

from typing import Any

from django import forms

from marketplace.models import ConsentPurpose
from marketplace.services import creators

CHOICE_LABELS = {"allow": "Allow", "deny": "Deny"}


class SignInForm(forms.Form):
    email = forms.EmailField(
        label="E-mail address",
        widget=forms.EmailInput(attrs={"autocomplete": "email", "autofocus": True}),
    )
    password = forms.CharField(
        label="Password",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )


class ConsentForm(forms.Form):
    """One allow/deny choice per purpose (left empty while never chosen: the service has no
    "unset" to go back to) and the compensation opt-in."""

    compensation_opt_in = forms.BooleanField(
        label="Yes, I want to be paid when my posts are licensed", required=False
    )

    def __init__(self, *args: Any, state: dict[str, str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for purpose in ConsentPurpose.values:
            current = state[purpose]
            self.fields[purpose] = forms.ChoiceField(
                label=ConsentPurpose(purpose).label,
                help_text=creators.PURPOSE_EXPLANATIONS[purpose],
                choices=[(choice, CHOICE_LABELS[choice]) for choice in creators.SETTABLE_CHOICES],
                widget=forms.RadioSelect,
                required=False,
                initial=current if current in creators.SETTABLE_CHOICES else None,
            )

    def consent_choices(self) -> dict[str, str]:
        """The purposes the form names a choice for (blank radios mean "leave as it is")."""
        return {
            purpose: self.cleaned_data[purpose]
            for purpose in ConsentPurpose.values
            if self.cleaned_data.get(purpose)
        }

    def purpose_fields(self) -> list[forms.BoundField]:
        return [self[purpose] for purpose in ConsentPurpose.values]
