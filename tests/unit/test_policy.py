"""The executor policy's pure decisions: parsing the settings, the SSRF rules, refusals."""

from __future__ import annotations

import ipaddress

import pytest

from chronolog.settings import SettingsError, load_settings
from worker.policy import (
    ExecutorPolicy,
    PolicyError,
    Target,
    address_rule,
    check_target,
    module_of,
    parse_allow,
    parse_job_types,
    parse_module_prefixes,
)


def test_job_types_default_to_python_and_http_without_shell() -> None:
    policy = load_settings({}).executor_policy()
    assert policy.job_types == ("python", "http")
    assert policy.type_refusal("shell") is not None
    assert policy.type_refusal("python") is None


def test_settings_are_parsed_and_validated() -> None:
    env = {
        "CHRONOLOG_WORKER_JOB_TYPES": " Python, shell ,http,shell",
        "CHRONOLOG_WORKER_PYTHON_MODULES": "jobs.,reports",
        "CHRONOLOG_HTTP_ALLOW": "api.internal:8080, 10.1.0.0/16,[::1]:9000,127.0.0.1",
    }
    settings = load_settings(env)
    assert settings.worker_job_types == ("python", "shell", "http")
    assert settings.worker_python_modules == ("jobs", "reports")
    entries = settings.executor_policy().http_allow
    assert [(e.host, str(e.network), e.port) for e in entries] == [
        ("api.internal", "None", 8080),
        (None, "10.1.0.0/16", None),
        (None, "::1/128", 9000),
        (None, "127.0.0.1/32", None),
    ]


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"CHRONOLOG_WORKER_JOB_TYPES": "bash"}, "'bash' is not a job type; write some of"),
        ({"CHRONOLOG_WORKER_JOB_TYPES": ","}, "names no job type"),
        ({"CHRONOLOG_WORKER_PYTHON_MODULES": "jobs/"}, "'jobs/' is not a module prefix"),
        ({"CHRONOLOG_WORKER_PYTHON_MODULES": "*,jobs."}, "'*' is not a module prefix"),
        ({"CHRONOLOG_HTTP_ALLOW": "http://api.internal"}, "not a URL"),
        ({"CHRONOLOG_HTTP_ALLOW": "10.1.0.1/16"}, "host bits set"),
        ({"CHRONOLOG_HTTP_ALLOW": "api.internal:http"}, "'http' is not a TCP port"),
        ({"CHRONOLOG_HTTP_ALLOW": "[::1]x"}, "is not [ADDRESS] or [ADDRESS]:PORT"),
        ({"CHRONOLOG_HTTP_ALLOW": "under score!"}, "is not a host name or address"),
    ],
)
def test_bad_policy_settings_refuse_to_start_and_say_what_to_write(
    env: dict[str, str], message: str
) -> None:
    with pytest.raises(SettingsError) as refused:
        load_settings(env)
    text = str(refused.value)
    name, value = next(iter(env.items()))
    assert text.startswith(f"{name}={value!r}: ")
    assert message in text
    assert "e.g." in text


def test_any_module_is_a_choice_of_its_own() -> None:
    assert parse_module_prefixes("*") == ("*",)
    assert ExecutorPolicy(python_modules=("*",)).module_refusal("subprocess:run", False) is None


@pytest.mark.parametrize(
    ("function", "refused"),
    [
        ("jobs.daily:run", False),
        ("jobs:run", False),
        ("jobs.daily.run", False),
        ("jobsevil.x:run", True),  # a prefix is a package, not a string prefix
        ("os.system", True),
    ],
)
def test_module_prefixes_are_packages(function: str, refused: bool) -> None:
    policy = ExecutorPolicy(python_modules=parse_module_prefixes("jobs."))
    assert (policy.module_refusal(function, in_app_dir=True) is not None) is refused


def test_module_of_both_reference_forms() -> None:
    assert module_of("reports.daily:Job.run") == "reports.daily"
    assert module_of("reports.daily.run") == "reports.daily"


@pytest.mark.parametrize(
    ("address", "rule"),
    [
        ("127.0.0.1", "loopback"),
        ("127.8.9.10", "loopback"),
        ("::1", "loopback"),
        ("169.254.169.254", "link-local"),
        ("fe80::1", "link-local"),
        ("10.0.0.1", "private"),
        ("172.16.0.1", "private"),
        ("192.168.0.1", "private"),
        ("fc00::1", "private"),
        ("fd12::1", "private"),
        ("100.64.0.1", "carrier-grade NAT"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("240.0.0.1", "reserved"),
        ("::ffff:127.0.0.1", "loopback address (127.0.0.1, in the IPv6 form"),
        ("::ffff:169.254.169.254", "link-local"),
        ("::127.0.0.1", "reserved"),  # IPv4-compatible, deprecated
        ("2002:a00:1::", "private address (10.0.0.1, in the IPv6 form"),  # 6to4
        ("64:ff9b::7f00:1", "loopback address (127.0.0.1"),  # NAT64
    ],
)
def test_addresses_the_ssrf_rules_refuse(address: str, rule: str) -> None:
    found = address_rule(ipaddress.ip_address(address))
    assert found is not None
    assert rule in found


@pytest.mark.parametrize("address", ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111"])
def test_public_addresses_pass(address: str) -> None:
    assert address_rule(ipaddress.ip_address(address)) is None


def test_one_refused_address_refuses_the_name() -> None:
    target = Target("mixed.example", 443, ["93.184.216.34", "10.0.0.7"])
    checked, refusal = check_target(target, ())
    assert checked == ()
    assert refusal == (
        "refused to connect to mixed.example:443: mixed.example resolves to 10.0.0.7, a "
        "private address. HTTP jobs do not reach loopback, link-local, private or reserved "
        "addresses; to allow this one, add 10.0.0.7:443 (or mixed.example, or a CIDR) to "
        "CHRONOLOG_HTTP_ALLOW on the worker"
    )


@pytest.mark.parametrize(
    ("allow", "target", "allowed"),
    [
        ("10.0.0.0/8", Target("db.internal", 5000, ["10.1.2.3"]), True),
        ("10.0.0.0/8", Target("db.internal", 5000, ["11.1.2.3", "172.16.0.1"]), False),
        ("db.internal", Target("DB.Internal.", 5000, ["10.1.2.3"]), True),
        ("db.internal:5000", Target("db.internal", 5001, ["10.1.2.3"]), False),
        ("127.0.0.1", Target("::ffff:127.0.0.1", 80, ["::ffff:127.0.0.1"]), True),
        ("[::1]:80", Target("localhost", 80, ["::1", "127.0.0.1"]), False),
        ("[::1]:80,127.0.0.1:80", Target("localhost", 80, ["::1", "127.0.0.1"]), True),
    ],
)
def test_the_allowlist(allow: str, target: Target, allowed: bool) -> None:
    checked, refusal = check_target(target, parse_allow(allow))
    assert (checked == tuple(target.addresses), refusal is None) == (allowed, allowed)


def test_parsers_raise_policy_errors() -> None:
    with pytest.raises(PolicyError):
        parse_job_types("ftp")
    with pytest.raises(PolicyError):
        parse_allow("10.0.0.0/33")
