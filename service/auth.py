"""Who may write: configured API keys, sent as `Authorization: Bearer KEY`, checked in constant time."""

from __future__ import annotations

import hashlib
import hmac
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from embeddings.errors import UnauthorizedError
from embeddings.settings import Settings

_bearer = HTTPBearer(auto_error=False, description="One of the keys in RELATED_API_KEYS.")


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()


def key_is_valid(given: str, keys: list[str]) -> bool:
    """Whether `given` is one of `keys`, in time independent of where the keys differ."""
    digest = _digest(given)
    valid = False
    for key in keys:  # every key is compared, so the time does not tell which one matched
        valid |= hmac.compare_digest(digest, _digest(key))
    return valid


def is_writer(settings: Settings, authorization: str | None) -> bool:
    """Whether an `Authorization` header carries a valid key."""
    scheme, _, token = (authorization or "").partition(" ")
    keys = [k.get_secret_value() for k in settings.api_keys]
    return bool(keys) and scheme.lower() == "bearer" and key_is_valid(token.strip(), keys)


def require_writer(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> None:
    """Let a write through only with `Authorization: Bearer KEY` and a configured key (else 401)."""
    settings: Settings = request.app.state.settings
    if not settings.api_keys:
        raise UnauthorizedError("writes are disabled: the service has no API keys (RELATED_API_KEYS)")
    if credentials is None:
        raise UnauthorizedError("writes need an API key: send 'Authorization: Bearer <key>'")
    if not key_is_valid(credentials.credentials, [k.get_secret_value() for k in settings.api_keys]):
        raise UnauthorizedError("the API key is not valid")
