"""EventCodec: single-object encoding, round trips, schema resolution and golden events."""

from __future__ import annotations

import dataclasses
import json
import shutil
import struct
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta, timezone
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from fastavro.schema import to_parsing_canonical_form

from events.codec import (
    MARKER,
    NAMESPACE,
    SCHEMA_ROOT,
    EventCodec,
    Schema,
    load_event_schema,
    schema_fingerprint,
    schema_versions,
)
from events.errors import MalformedEvent, SchemaNotFound
from events.model import (
    PAYLOAD_TYPES,
    Event,
    Hook,
    HookDelivered,
    HookDeliveryFailed,
    JobCreated,
    JobDeleted,
    JobPaused,
    JobResumed,
    JobSpec,
    JobUpdated,
    Payload,
    RunCancelled,
    RunCancelRequested,
    RunDeadLettered,
    RunFailed,
    RunLost,
    RunQueued,
    RunRequested,
    RunRetryRequested,
    RunRetryScheduled,
    RunSkipped,
    RunStarted,
    RunSucceeded,
    RunTimedOut,
    TokenCreated,
    TokenRevoked,
    WorkerDeregistered,
    WorkerLost,
    WorkerRegistered,
    spec_from_dict,
    to_millis,
)
from tests.golden.make_golden import (
    GOLDEN_ROOT,
    SAMPLES,
    latest_payloads,
    latest_samples,
    v1_samples,
)

V1 = SCHEMA_ROOT / "v1"
CURRENT = SCHEMA_ROOT / schema_versions()[-1]
AT = datetime(2025, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
PAYLOAD_NAMES = [cls.__name__ for cls in PAYLOAD_TYPES]
GOLDEN_FILES = sorted(GOLDEN_ROOT.glob("v*/*.bin"))


@pytest.fixture(scope="module")
def codec() -> EventCodec:
    return EventCodec.default()


def minimal_payloads() -> list[Payload]:
    """One payload per event type with only its required fields set."""
    return [
        JobCreated(spec=JobSpec(name="j", type="python")),
        JobUpdated(spec=JobSpec(name="j", type="shell")),
        JobDeleted(),
        JobPaused(),
        JobResumed(),
        RunRequested(trigger="manual"),
        RunQueued(queue="default"),
        RunSkipped(reason="overlap"),
        RunStarted(worker_id="w", lease_token=1),
        RunSucceeded(worker_id="w", lease_token=1, duration_ms=0),
        RunFailed(worker_id="w", lease_token=1, duration_ms=0, error="boom"),
        RunTimedOut(timeout=1.0),
        RunLost(reason="lease expired"),
        RunRetryScheduled(next_attempt=2, retry_at=AT, delay_ms=1000),
        RunRetryRequested(next_attempt=2),
        RunDeadLettered(reason="retries exhausted", attempts=4),
        RunCancelRequested(),
        RunCancelled(),
        WorkerRegistered(worker_id="w", hostname="h", pid=1, tags=(), concurrency=1),
        WorkerDeregistered(worker_id="w"),
        WorkerLost(worker_id="w"),
        TokenCreated(name="t", role="viewer", token_hash="00"),
        TokenRevoked(name="t"),
        HookDelivered(
            hook="on_success",
            url="http://h",
            outcome_event_id="e",
            attempt=1,
            status_code=200,
            duration_ms=0,
        ),
        HookDeliveryFailed(
            hook="on_success", url="http://h", outcome_event_id="e", attempt=1, error="x"
        ),
    ]


def minimal_events() -> list[Event]:
    return [Event(payload=p, occurred_at=AT, actor="api") for p in minimal_payloads()]


def fields_left_at_default(obj: Any) -> list[str]:
    left = []
    for field in dataclasses.fields(obj):
        if field.default is not dataclasses.MISSING:
            default = field.default
        elif field.default_factory is not dataclasses.MISSING:
            default = field.default_factory()
        else:
            continue
        if getattr(obj, field.name) == default:
            left.append(field.name)
    return left


@cache
def raw_record_schema(directory: Path, name: str) -> dict[str, Any]:
    """The JSON of one ``.avsc`` file, as written (not parsed by fastavro)."""
    schema: dict[str, Any] = json.loads((directory / f"{NAMESPACE}.{name}.avsc").read_text())
    return schema


def defaulted_fields(name: str) -> set[str]:
    return {f["name"] for f in raw_record_schema(CURRENT, name)["fields"] if "default" in f}


def type_id(event: Event) -> str:
    return event.type


# --- the samples themselves --------------------------------------------------------


def test_samples_cover_every_payload_type_in_schema_order() -> None:
    assert [type(p) for p in latest_payloads()] == list(PAYLOAD_TYPES)
    assert [type(p) for p in minimal_payloads()] == list(PAYLOAD_TYPES)


@pytest.mark.parametrize("payload", latest_payloads(), ids=lambda p: type(p).__name__)
def test_full_samples_set_every_field_to_a_non_default_value(payload: Payload) -> None:
    assert fields_left_at_default(payload) == []
    if isinstance(payload, JobCreated | JobUpdated):
        assert fields_left_at_default(payload.spec) == []


# --- round trips -------------------------------------------------------------------


@pytest.mark.parametrize("event", list(latest_samples().values()), ids=type_id)
def test_event_with_every_field_set_round_trips(codec: EventCodec, event: Event) -> None:
    assert codec.decode(codec.encode(event)) == event


@pytest.mark.parametrize("event", minimal_events(), ids=type_id)
def test_event_with_defaults_round_trips(codec: EventCodec, event: Event) -> None:
    assert codec.decode(codec.encode(event)) == event


def test_decoded_datetimes_are_utc_and_keep_the_instant(codec: EventCodec) -> None:
    paris_summer = timezone(timedelta(hours=2))
    event = Event(
        payload=WorkerLost(worker_id="w", last_heartbeat_at=AT.astimezone(paris_summer)),
        occurred_at=AT.astimezone(paris_summer),
        actor="scheduler",
    )
    decoded = codec.decode(codec.encode(event))
    assert decoded == event
    assert decoded.occurred_at.tzinfo is UTC
    assert isinstance(decoded.payload, WorkerLost)
    assert decoded.payload.last_heartbeat_at is not None
    assert decoded.payload.last_heartbeat_at.tzinfo is UTC


def test_sub_millisecond_precision_is_truncated(codec: EventCodec) -> None:
    precise = AT.replace(microsecond=123_456)
    event = Event(payload=JobPaused(), occurred_at=precise, actor="api", job_id="j")
    assert codec.decode(codec.encode(event)).occurred_at == to_millis(precise)


def test_times_before_1970_round_trip(codec: EventCodec) -> None:
    early = datetime(1969, 7, 20, 20, 17, 40, 500000, tzinfo=UTC)
    event = Event(payload=JobPaused(), occurred_at=early, actor="api", job_id="j")
    assert codec.decode(codec.encode(event)) == event


def test_naive_datetime_is_refused(codec: EventCodec) -> None:
    event = Event(payload=JobPaused(), occurred_at=datetime(2025, 1, 1), actor="api")
    with pytest.raises(ValueError, match="naive datetime"):
        codec.encode(event)


@pytest.mark.parametrize("parameters", [{"x": object()}, {"x": float("nan")}])
def test_parameters_that_are_not_json_are_refused(
    codec: EventCodec, parameters: dict[str, Any]
) -> None:
    event = Event(RunRequested(trigger="manual", parameters=parameters), AT, "api", job_id="j")
    with pytest.raises(ValueError, match=event.event_id):
        codec.encode(event)


def test_value_of_the_wrong_avro_type_is_refused(codec: EventCodec) -> None:
    event = Event(RunStarted(worker_id="w", lease_token="7"), AT, "w", job_id="j")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="lease_token"):
        codec.encode(event)


# --- single-object framing ---------------------------------------------------------


def reference_crc64_avro(data: bytes) -> int:
    """CRC-64-AVRO as the Avro spec defines it, as Java's signed long."""
    empty = 0xC15D213AA4D7A795
    table = []
    for i in range(256):
        fp = i
        for _ in range(8):
            fp = (fp >> 1) ^ (empty & -(fp & 1))
        table.append(fp)
    fp = empty
    for byte in data:
        fp = (fp >> 8) ^ table[(fp ^ byte) & 0xFF]
    return fp - (1 << 64) if fp >= 1 << 63 else fp


def test_reference_crc64_matches_avro_spec_vectors() -> None:
    # share/test/data/schema-tests.txt of Apache Avro
    assert reference_crc64_avro(b'"null"') == 7195948357588979594
    assert reference_crc64_avro(b'"int"') == 8247732601305521295
    assert reference_crc64_avro(b'"long"') == -3434872931120570953


def test_header_is_marker_then_little_endian_fingerprint(codec: EventCodec) -> None:
    data = codec.encode(minimal_events()[0])
    latest = load_event_schema(SCHEMA_ROOT / schema_versions()[-1])
    canonical = to_parsing_canonical_form(latest).encode()
    assert data[:2] == b"\xc3\x01" == MARKER
    assert data[2:10] == struct.pack("<q", reference_crc64_avro(canonical))
    assert data[2:10] == codec.fingerprint == schema_fingerprint(latest)


def test_unknown_fingerprint_raises_schema_not_found(codec: EventCodec) -> None:
    data = codec.encode(minimal_events()[0])
    alien = bytes(8)
    with pytest.raises(SchemaNotFound) as raised:
        codec.decode(data[:2] + alien + data[10:])
    assert raised.value.fingerprint == alien


@pytest.mark.parametrize(
    "data",
    [b"", b"\xc3", b"\xc3\x01\x00", b"\x00\x01" + bytes(20), b"Obj\x01" + bytes(20)],
    ids=["empty", "marker-half", "short-header", "bad-marker", "avro-container-file"],
)
def test_bytes_without_single_object_header_are_malformed(codec: EventCodec, data: bytes) -> None:
    with pytest.raises(MalformedEvent, match="not a single-object-encoded event"):
        codec.decode(data)


def test_every_truncation_is_malformed(codec: EventCodec) -> None:
    data = codec.encode(latest_samples()["RunSucceeded"])
    for end in range(10, len(data)):
        with pytest.raises(MalformedEvent):
            codec.decode(data[:end])


def test_trailing_bytes_are_malformed(codec: EventCodec) -> None:
    with pytest.raises(MalformedEvent, match="trailing"):
        codec.decode(codec.encode(minimal_events()[0]) + b"\x00")


def test_type_that_disagrees_with_payload_is_malformed(codec: EventCodec) -> None:
    record = codec.decode_record(codec.encode(minimal_events()[2]))
    record["type"] = "JobPaused"
    with pytest.raises(MalformedEvent, match="JobPaused"):
        codec.decode(codec.encode_record(record))


# --- the schema files --------------------------------------------------------------


def test_one_file_per_named_type() -> None:
    names = {"Event", "JobSpec", "Hook", *PAYLOAD_NAMES}
    assert {p.name for p in CURRENT.glob("*.avsc")} == {f"{NAMESPACE}.{n}.avsc" for n in names}
    for name in names:
        schema = raw_record_schema(CURRENT, name)
        assert (schema["type"], schema["namespace"], schema["name"]) == ("record", NAMESPACE, name)


def test_envelope_payload_union_lists_every_payload_type() -> None:
    fields = {f["name"]: f for f in raw_record_schema(CURRENT, "Event")["fields"]}
    assert fields["payload"]["type"] == [f"{NAMESPACE}.{name}" for name in PAYLOAD_NAMES]


def test_envelope_fields_are_the_event_fields_plus_type() -> None:
    avro = [f["name"] for f in raw_record_schema(CURRENT, "Event")["fields"]]
    python = [f.name for f in dataclasses.fields(Event)]
    assert sorted(avro) == sorted([*python, "type"])


@pytest.mark.parametrize("cls", [JobSpec, Hook, *PAYLOAD_TYPES], ids=lambda c: c.__name__)
def test_record_fields_mirror_the_dataclass(cls: type[Any]) -> None:
    avro = raw_record_schema(CURRENT, cls.__name__)["fields"]
    python = dataclasses.fields(cls)
    assert [f["name"] for f in avro] == [f.name for f in python]
    with_default = {
        f.name
        for f in python
        if f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
    }
    assert defaulted_fields(cls.__name__) == with_default


def strip_defaulted(record: dict[str, Any]) -> dict[str, Any]:
    """``record`` without the fields whose value should come from the schema default."""
    name, body = record["payload"]
    body = {k: v for k, v in body.items() if k not in defaulted_fields(name.split(".")[-1])}
    if "spec" in body:
        body["spec"] = {
            k: v for k, v in body["spec"].items() if k not in defaulted_fields("JobSpec")
        }
    envelope = {k: v for k, v in record.items() if k not in defaulted_fields("Event")}
    return {**envelope, "payload": (name, body)}


@pytest.mark.parametrize("event", minimal_events(), ids=type_id)
def test_avro_defaults_decode_to_the_python_defaults(codec: EventCodec, event: Event) -> None:
    record = strip_defaulted(codec.decode_record(codec.encode(event)))
    assert codec.decode(codec.encode_record(record)) == event


# --- schema resolution across versions ---------------------------------------------


FieldsEdit = Callable[[list[dict[str, Any]]], None]


def next_version(tmp_path: Path, edits: Mapping[str, FieldsEdit]) -> Schema:
    """A copy of v1 under ``tmp_path`` with ``edits`` applied to the named records' fields."""
    target = tmp_path / "v-next"
    shutil.copytree(V1, target)
    for name, edit in edits.items():
        path = target / f"{NAMESPACE}.{name}.avsc"
        schema = json.loads(path.read_text())
        edit(schema["fields"])
        path.write_text(json.dumps(schema))
    return load_event_schema(target)


def evolve_job_spec(fields: list[dict[str, Any]]) -> None:
    fields[:] = [f for f in fields if f["name"] != "description"]
    fields.append({"name": "owner", "type": ["null", "string"], "default": None})


def evolve_run_succeeded(fields: list[dict[str, Any]]) -> None:
    fields.append({"name": "output_truncated", "type": "boolean", "default": False})


@pytest.fixture
def v1_schema() -> Schema:
    return load_event_schema(V1)


@pytest.fixture
def next_schema(tmp_path: Path) -> Schema:
    """v1 + ``RunSucceeded.output_truncated`` + ``JobSpec.owner`` - ``JobSpec.description``."""
    edits = {"JobSpec": evolve_job_spec, "RunSucceeded": evolve_run_succeeded}
    return next_version(tmp_path, edits)


def without_description(event: Event) -> Event:
    if isinstance(event.payload, JobCreated | JobUpdated):
        spec = dataclasses.replace(event.payload.spec, description=None)
        return dataclasses.replace(event, payload=dataclasses.replace(event.payload, spec=spec))
    return event


def test_next_version_has_another_fingerprint(v1_schema: Schema, next_schema: Schema) -> None:
    assert schema_fingerprint(v1_schema) != schema_fingerprint(next_schema)


def test_events_written_with_v1_decode_under_the_next_reader(
    v1_schema: Schema, next_schema: Schema
) -> None:
    writer = EventCodec(v1_schema)
    reader = EventCodec(next_schema, readable=[v1_schema])
    samples = v1_samples()
    for event in samples.values():
        assert reader.decode(writer.encode(event)) == without_description(event)
    succeeded = reader.decode_record(writer.encode(samples["RunSucceeded"]))
    assert succeeded["payload"][1]["output_truncated"] is False
    spec = reader.decode_record(writer.encode(samples["JobCreated"]))["payload"][1]["spec"]
    assert spec["owner"] is None
    assert "description" not in spec


def test_events_written_with_the_next_writer_decode_under_v1(
    v1_schema: Schema, next_schema: Schema
) -> None:
    writer = EventCodec(next_schema)
    reader = EventCodec(v1_schema, readable=[next_schema])
    for event in v1_samples().values():
        record = writer.decode_record(writer.encode(event))
        body = record["payload"][1]
        if "spec" in body:
            body["spec"]["owner"] = "ops-team"
        if "output_truncated" in body:
            body["output_truncated"] = True
        data = writer.encode_record(record)
        assert data[2:10] == schema_fingerprint(next_schema)
        assert reader.decode(data) == without_description(event)


def test_field_added_without_default_cannot_read_old_events(
    tmp_path: Path, v1_schema: Schema
) -> None:
    def add_required(fields: list[dict[str, Any]]) -> None:
        fields.append({"name": "region", "type": "string"})

    broken = next_version(tmp_path, {"RunQueued": add_required})
    old_event = v1_samples()["RunQueued"]
    with pytest.raises(MalformedEvent, match="region"):
        EventCodec(broken, readable=[v1_schema]).decode(EventCodec(v1_schema).encode(old_event))


def test_reader_without_the_writer_schema_raises_schema_not_found(
    v1_schema: Schema, next_schema: Schema
) -> None:
    data = EventCodec(next_schema).encode(minimal_events()[0])
    with pytest.raises(SchemaNotFound):
        EventCodec(v1_schema).decode(data)


def test_default_codec_reads_every_published_version() -> None:
    versions = schema_versions()
    assert versions[0] == "v1"
    known = {schema_fingerprint(load_event_schema(SCHEMA_ROOT / v)) for v in versions}
    assert EventCodec.default().known_fingerprints == known
    assert EventCodec.default() is EventCodec.default()


# --- golden events: what released builds wrote must keep decoding ------------------


def test_golden_events_exist_for_every_published_version() -> None:
    for version in schema_versions():
        stems = {p.stem for p in (GOLDEN_ROOT / version).glob("*.bin")}
        assert stems <= set(PAYLOAD_NAMES), version
        assert stems, f"no golden events for schema {version}: run tests/golden/make_golden.py"
    latest = schema_versions()[-1]
    assert {p.stem for p in (GOLDEN_ROOT / latest).glob("*.bin")} == set(PAYLOAD_NAMES)


@pytest.mark.parametrize("path", GOLDEN_FILES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_golden_event_decodes_to_its_sample(codec: EventCodec, path: Path) -> None:
    version = path.parent.name
    data = path.read_bytes()
    assert data[2:10] == schema_fingerprint(load_event_schema(SCHEMA_ROOT / version))
    assert codec.decode(data) == SAMPLES[version]()[path.stem]


# --- schema v4: no concurrency limit, the python pool --------------------------------


@pytest.mark.parametrize("limit", [None, 1, 10_000])
def test_v4_round_trips_max_concurrency_and_pool(codec: EventCodec, limit: int | None) -> None:
    spec = JobSpec(
        name="fan-out",
        type="python",
        function="jobs.fetch",
        concurrency_policy="allow",
        max_concurrency=limit,
        pool="thread",
    )
    event = Event(payload=JobCreated(spec=spec), occurred_at=AT, actor="alice", job_id="j")
    decoded = codec.decode(codec.encode(event))
    assert isinstance(decoded.payload, JobCreated)
    assert (decoded.payload.spec.max_concurrency, decoded.payload.spec.pool) == (limit, "thread")


def test_a_v3_spec_reads_with_its_limit_and_the_process_pool(codec: EventCodec) -> None:
    v3 = EventCodec(load_event_schema(SCHEMA_ROOT / "v3"))
    spec = JobSpec(name="old", type="shell", command="true", max_concurrency=7)
    event = Event(payload=JobUpdated(spec=spec), occurred_at=AT, actor="alice", job_id="j")
    decoded = codec.decode(v3.encode(event))
    assert isinstance(decoded.payload, JobUpdated)
    assert (decoded.payload.spec.max_concurrency, decoded.payload.spec.pool) == (7, "process")
    assert decoded == event


# --- schema v5: the parameters' schema, hooks, hook deliveries -------------------------


def test_v5_round_trips_the_parameters_schema_and_hooks(codec: EventCodec) -> None:
    spec = JobSpec(
        name="report",
        type="python",
        function="jobs.report:run",
        parameters_schema={"type": "object", "properties": {"day": {"format": "date"}}},
        on_failure=Hook(url="https://hooks.example.com/f", secret="HOOK_KEY"),
        on_dead_letter=Hook(url="https://hooks.example.com/d"),
    )
    event = Event(payload=JobCreated(spec=spec), occurred_at=AT, actor="alice", job_id="j")
    decoded = codec.decode(codec.encode(event))
    assert decoded == event
    assert isinstance(decoded.payload, JobCreated)
    assert decoded.payload.spec.on_failure == Hook("https://hooks.example.com/f", "HOOK_KEY")
    assert decoded.payload.spec.on_success is None


def test_a_v4_spec_reads_with_no_parameters_schema_and_no_hooks(codec: EventCodec) -> None:
    v4 = EventCodec(load_event_schema(SCHEMA_ROOT / "v4"))
    spec = JobSpec(name="old", type="shell", command="true", max_concurrency=None)
    event = Event(payload=JobCreated(spec=spec), occurred_at=AT, actor="alice", job_id="j")
    decoded = codec.decode(v4.encode(event))
    assert decoded == event
    assert isinstance(decoded.payload, JobCreated)
    assert decoded.payload.spec.parameters_schema is None
    assert decoded.payload.spec.on_success is None


def test_a_spec_with_hooks_comes_back_from_its_json_form() -> None:
    spec = JobSpec(name="j", type="shell", command="true", on_success=Hook("http://h", "K"))
    assert spec_from_dict(dataclasses.asdict(spec)) == spec
