"""The deal: offers, license requests and their review, issued licenses."""

from licensing.models.licenses import (
    License,
    LicenseGroupObjectPermission,
    LicenseState,
    LicenseUserObjectPermission,
)
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
    "LicenseGroupObjectPermission",
    "LicenseRequest",
    "LicenseState",
    "LicenseUserObjectPermission",
    "Offer",
    "RequestState",
    "ReviewDecision",
]
