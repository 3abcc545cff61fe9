from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from marketplace.models import ApiKey, User


@dataclass(frozen=True)
class Actor:
    """Who is acting, for permission checks and the audit trail: a person, a key, or the system."""

    user: "User | None" = None
    api_key: "ApiKey | None" = None
    ip_address: str | None = None
    request_id: str = ""

    @classmethod
    def system(cls) -> "Actor":
        return cls()

    @property
    def label(self) -> str:
        if self.user is not None:
            return self.user.email
        if self.api_key is not None:
            return f"key {self.api_key.prefix}"
        return "system"
