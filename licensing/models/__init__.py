"""The deal: offers, license requests and their review, issued licenses."""

from licensing.models.licenses import License, LicenseState
from licensing.models.offers import Offer
from licensing.models.requests import (
    OPEN_STATES,
    DecisionKind,
    LicenseRequest,
    RequestState,
    ReviewDecision,
)

__all__ = [
    "OPEN_STATES",
    "DecisionKind",
    "License",
    "LicenseRequest",
    "LicenseState",
    "Offer",
    "RequestState",
    "ReviewDecision",
]
