"""Stripe's form encoding: `a[b][c]=1&items[0][price]=p` into nested dicts and lists.

The SDK encodes every v1 request this way (bodies of POSTs, query strings of GETs), with
values as strings: integers as decimal digits, booleans as `true`/`false`, and an empty
string meaning "unset this field".
"""

import re
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import parse_qsl

from tests.fake_stripe.store import StripeError

_KEY = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")
# Free-form hashes whose keys may look like list indices but must stay dicts.
_HASHES = {"metadata", "payload"}


def parse_form(raw: str) -> dict[str, Any]:
    """Parse a form-encoded string into nested dicts; `x[0]`, `x[1]` and `x[]` become lists."""
    root: dict[str, Any] = {}
    for key, value in parse_qsl(raw, keep_blank_values=True):
        match = _KEY.match(key)
        if match is None:
            raise StripeError(400, f"Invalid parameter name: {key}", param=key)
        parts = [match.group(1), *re.findall(r"\[([^\[\]]*)\]", match.group(2))]
        node = root
        for index, part in enumerate(parts):
            is_last = index == len(parts) - 1
            if part == "":  # `expand[]=a&expand[]=b`: append in order
                part = str(len(node))
            if is_last:
                node[part] = value
            else:
                child = node.setdefault(part, {})
                if not isinstance(child, dict):
                    raise StripeError(400, f"Invalid parameter: {key}", param=key)
                node = child
    return _listify(root, parent="")


def _listify(node: dict[str, Any], parent: str) -> Any:
    converted = {
        key: _listify(value, key) if isinstance(value, dict) else value
        for key, value in node.items()
    }
    if parent not in _HASHES and converted and all(key.isdigit() for key in converted):
        return [converted[key] for key in sorted(converted, key=int)]
    return converted


def to_int(params: dict[str, Any], name: str, default: int | None = None) -> int:
    """The integer at `name`, or `default`; missing with no default is a 400."""
    value = params.get(name)
    if value is None or value == "":
        if default is None:
            raise StripeError(
                400, f"Missing required param: {name}.", param=name, code="parameter_missing"
            )
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        raise StripeError(400, f"Invalid integer: {value}", param=name) from None


def to_decimal(value: Any, name: str) -> Decimal:
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise StripeError(400, f"Invalid decimal: {value}", param=name) from None
    if not number.is_finite():
        raise StripeError(400, f"Invalid decimal: {value}", param=name)
    return number


def to_bool(params: dict[str, Any], name: str, default: bool) -> bool:
    value = params.get(name)
    if value is None or value == "":
        return default
    if value in ("true", "false"):
        return value == "true"
    raise StripeError(400, f"Invalid boolean: {value}", param=name)


def require(params: dict[str, Any], *names: str) -> None:
    for name in names:
        if params.get(name) in (None, ""):
            raise StripeError(
                400, f"Missing required param: {name}.", param=name, code="parameter_missing"
            )


def allow(params: dict[str, Any], *names: str) -> None:
    """Reject parameters the endpoint does not know, as Stripe does (catches gateway typos)."""
    known = {*names, "expand"}
    for name in params:
        if name not in known:
            raise StripeError(
                400, f"Received unknown parameter: {name}", param=name, code="parameter_unknown"
            )


def one_of(params: dict[str, Any], name: str, choices: tuple[str, ...], default: str) -> str:
    value = params.get(name) or default
    if value not in choices:
        raise StripeError(400, f"Invalid {name}: must be one of {', '.join(choices)}", param=name)
    return value


def metadata(params: dict[str, Any], current: dict[str, str] | None = None) -> dict[str, str]:
    """Merge `metadata[...]` into `current`; an empty value deletes a key, `metadata=` all."""
    result = dict(current or {})
    value = params.get("metadata")
    if value is None:
        return result
    if value == "":
        return {}
    if not isinstance(value, dict):
        raise StripeError(400, "Invalid hash", param="metadata")
    for key, item in value.items():
        if item == "":
            result.pop(key, None)
        else:
            result[key] = str(item)
    return result
