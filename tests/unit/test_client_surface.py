"""The blocking and the async client offer the same calls, with the same parameters.

Both are thin over ``chronolog.client.calls`` (what to send, how to read the answer);
each keeps its own typed one-line methods (docs/decisions.md, "Two clients over one set
of calls"). This keeps the two lists from drifting apart.
"""

from __future__ import annotations

import inspect

from chronolog.client import AsyncClient, Client

# Named differently on purpose: the context-manager protocol and closing.
PROTOCOL = {"close", "aclose"}


def public_methods(cls: type) -> dict[str, inspect.Signature]:
    return {
        name: inspect.signature(member)
        for name, member in inspect.getmembers(cls, inspect.isfunction)
        if not name.startswith("_") and name not in PROTOCOL
    }


def test_both_clients_have_the_same_calls() -> None:
    names = public_methods(Client).keys()
    assert {"create_job", "trigger", "trigger_many", "wait", "output", "changes"} <= names
    assert names == public_methods(AsyncClient).keys()


def test_each_call_takes_the_same_parameters_in_both_clients() -> None:
    blocking, asynchronous = public_methods(Client), public_methods(AsyncClient)
    for name, signature in blocking.items():
        assert list(signature.parameters) == list(asynchronous[name].parameters), name
        for parameter, spec in signature.parameters.items():
            other = asynchronous[name].parameters[parameter]
            assert (spec.kind, spec.default) == (other.kind, other.default), (name, parameter)


def test_every_async_call_is_a_coroutine_or_an_async_iterator() -> None:
    for name in public_methods(AsyncClient):
        member = getattr(AsyncClient, name)
        assert inspect.iscoroutinefunction(member) or inspect.isasyncgenfunction(member), name
