"""Domain errors raised by services; the API maps each to a status code and a stable `code`.

Services never build HTTP responses; they raise one of these with a machine-readable code and a
sentence that tells the caller what was wrong and, where possible, what to do next.
"""


class DomainError(Exception):
    status_code = 400
    default_code = "invalid"

    def __init__(
        self, detail: str, *, code: str | None = None, fields: dict[str, list[str]] | None = None
    ):
        super().__init__(detail)
        self.detail = detail
        self.code = code or self.default_code
        self.fields = fields


class InvalidInput(DomainError):
    status_code = 400
    default_code = "invalid"


class NotAllowed(DomainError):
    status_code = 403
    default_code = "permission_denied"


class NotFound(DomainError):
    status_code = 404
    default_code = "not_found"


class Conflict(DomainError):
    """The object is not in a state that allows this change (for example, already decided)."""

    status_code = 409
    default_code = "conflict"
