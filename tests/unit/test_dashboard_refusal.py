"""How the dashboard words an action the API refused."""

from __future__ import annotations

from dashboard.api_client import refusal


def test_the_apis_message_is_shown_as_it_is() -> None:
    body = {"error": "invalid", "message": "parameters: not an object", "errors": []}
    assert refusal(422, body) == "parameters: not an object"


def test_field_reasons_stand_in_for_a_missing_message() -> None:
    body = {"errors": [{"field": "schedule", "reason": "not a cron expression"}]}
    assert refusal(422, body) == "schedule: not a cron expression"


def test_a_body_that_is_not_the_apis_says_the_status() -> None:
    assert refusal(502, "<html>Bad Gateway</html>") == "the API answered 502"
