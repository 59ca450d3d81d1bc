"""What a secret reference is, ``{"secret": "NAME"}``: one rule for the API that stores
references and the workers that resolve them."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

SECRET_NAME_PATTERN: Final = r"^[A-Za-z_][A-Za-z0-9_]{0,127}$"
SECRET_NAME: Final = re.compile(SECRET_NAME_PATTERN)


def secret_name(value: Any) -> str | None:
    """NAME if ``value`` is a reference ``{"secret": "NAME"}``, else None."""
    if isinstance(value, Mapping) and len(value) == 1:
        name = value.get("secret")
        if isinstance(name, str) and SECRET_NAME.match(name):
            return name
    return None
