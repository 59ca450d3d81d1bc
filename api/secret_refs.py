"""Secret references in job bodies, and the rule that refuses plain secrets.

A header value, or a value anywhere inside ``parameters`` or a JSON ``body``, may be
``{"secret": "NAME"}``: the worker puts the value of NAME (from its environment or its
secrets file) there when it runs the job, so the value never enters an event. A plain
value under a key that looks secret would be kept in the log for good, so it is refused.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Annotated, Any, Final

from pydantic import ConfigDict, Field, with_config
from typing_extensions import TypedDict

from api.errors import FieldProblem
from events.secret_refs import SECRET_NAME_PATTERN, secret_name

# Key endings (as words, after normalising) that mark a value as a secret. Matching the
# end, not any word, keeps ``max_tokens``, ``token_count`` and ``session_id`` plain.
SECRET_KEY_ENDINGS: Final = (
    ("password",),
    ("passwd",),
    ("pwd",),
    ("passphrase",),
    ("secret",),
    ("token",),
    ("authorization",),
    ("api", "key"),
    ("apikey",),
    ("access", "key"),
    ("private", "key"),
    ("secret", "key"),
    ("signing", "key"),
    ("credentials",),
    ("credential",),
    ("cookie",),
    ("session",),
)
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_SEPARATORS = re.compile(r"[^a-z0-9]+")

HOW_TO_REFER: Final = (
    'refer to a secret instead, {"secret": "NAME"}, and set NAME in the workers\' '
    "environment or their secrets file (CHRONOLOG_SECRETS_FILE)"
)


@with_config(ConfigDict(extra="forbid"))
class SecretRef(TypedDict):
    """``{"secret": "NAME"}``: a value the worker fills in when it runs the job. A
    TypedDict, so a validated body keeps plain dicts (what events and the read model hold)."""

    secret: Annotated[str, Field(pattern=SECRET_NAME_PATTERN)]


HeaderValue = str | SecretRef  # a header's value as the API takes and answers it


def split_headers(headers: Mapping[str, HeaderValue]) -> tuple[dict[str, str], dict[str, str]]:
    """(plain headers, header name -> secret name), as a job spec keeps them."""
    plain = {k: v for k, v in headers.items() if isinstance(v, str)}
    refs = {k: v["secret"] for k, v in headers.items() if not isinstance(v, str)}
    return plain, refs


def join_headers(plain: Mapping[str, str], refs: Mapping[str, str]) -> dict[str, HeaderValue]:
    """A spec's headers as the API answers them: references shown as references."""
    return {**plain, **{k: SecretRef(secret=name) for k, name in refs.items()}}


def looks_secret(key: str) -> bool:
    """True for ``password``, ``X-Api-Key``, ``Proxy-Authorization``, ``clientSecret``..."""
    words = tuple(w for w in _SEPARATORS.split(_CAMEL.sub("_", key).lower()) if w)
    return any(words[-len(end) :] == end for end in SECRET_KEY_ENDINGS)


def plain_secrets(field: str, value: Any) -> list[FieldProblem]:
    """A problem for every plain value that sits under a secret-looking key in ``value``."""
    return [
        FieldProblem(
            path,
            f"looks like a secret, and a plain value would be kept in the "
            f"event log for good; {HOW_TO_REFER}",
        )
        for path in _plain_paths(field, value, under_secret=False)
    ]


def _plain_paths(path: str, value: Any, *, under_secret: bool) -> Iterator[str]:
    if secret_name(value) is not None:
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            yield from _plain_paths(
                f"{path}.{key}", item, under_secret=under_secret or looks_secret(str(key))
            )
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from _plain_paths(f"{path}[{index}]", item, under_secret=under_secret)
    elif under_secret and _is_plain(value):
        yield path


def _is_plain(value: Any) -> bool:
    # Empty text and flags (``"use_token": true``) hold no secret; numbers can (a PIN).
    if isinstance(value, bool) or value is None:
        return False
    return value != "" if isinstance(value, str) else isinstance(value, int | float)
