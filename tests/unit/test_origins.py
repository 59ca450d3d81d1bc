import pytest

from api.origins import foreign_origin, is_json_media_type, normalize_origin


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        ("https://Ops.Example.com", "https://ops.example.com"),
        ("https://ops.example.com:443", "https://ops.example.com"),
        ("http://localhost:3000/", "http://localhost:3000"),
        ("null", None),
        ("file://", None),
        ("https://ops.example.com/path", None),
        ("https://user@ops.example.com", None),
        ("http://host:port", None),
        ("*", None),
    ],
)
def test_origins_are_compared_in_canonical_form(raw: str, canonical: str | None) -> None:
    assert normalize_origin(raw) == canonical


@pytest.mark.parametrize(
    ("origin", "host", "foreign"),
    [
        ("http://localhost:8000", "localhost:8000", False),
        ("http://LOCALHOST:8000", "localhost:8000", False),
        ("https://chronolog.example", "chronolog.example", False),  # behind a TLS proxy
        ("https://chronolog.example", "chronolog.example:443", False),
        ("http://127.0.0.1:8000", "localhost:8000", True),
        ("http://evil.example", "localhost:8000", True),
        ("http://localhost:8001", "localhost:8000", True),
        ("null", "localhost:8000", True),
        ("https://ops.example.com", "localhost:8000", False),  # configured
    ],
)
def test_an_origin_is_foreign_unless_the_apis_own_or_configured(
    origin: str, host: str, foreign: bool
) -> None:
    assert foreign_origin(origin, host, {"https://ops.example.com"}) is foreign


@pytest.mark.parametrize(
    ("content_type", "json"),
    [
        ("application/json", True),
        ("Application/JSON; charset=utf-8", True),
        ("application/merge-patch+json", True),
        ("application/+json", False),
        ("application/jsonx", False),
        ("text/json", False),
        ("text/plain", False),
        ("application/x-www-form-urlencoded", False),
        ("multipart/form-data; boundary=x", False),
        ("", False),
    ],
)
def test_only_json_media_types_are_json(content_type: str, json: bool) -> None:
    assert is_json_media_type(content_type) is json
