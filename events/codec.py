"""Avro single-object encoding of Chronolog events.

Wire format (Avro spec, "Single object encoding"): ``C3 01``, the 8-byte little-endian
CRC-64-AVRO fingerprint of the writer schema's parsing canonical form, then the Avro
binary datum. A codec writes with its current schema and reads every schema it knows,
resolving the writer schema to its current one with fastavro.

Python to Avro: ``Any`` and ``dict[str, Any]`` travel as JSON text (Avro has no "any"
type), tuples as arrays, datetimes as timestamp-millis (naive datetimes are refused).
"""

from __future__ import annotations

import functools
import io
import json
import logging
import re
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final, TypeAlias

from fastavro import schemaless_reader, schemaless_writer
from fastavro.read import SchemaResolutionError
from fastavro.schema import fingerprint, load_schema, to_parsing_canonical_form

from events.errors import MalformedEvent, SchemaNotFound
from events.model import PAYLOAD_TYPES, Event, Hook, JobSpec

logger = logging.getLogger(__name__)

Schema: TypeAlias = dict[str, Any]
"""A schema parsed by fastavro."""

SCHEMA_ROOT: Final = Path(__file__).parent / "schemas"
NAMESPACE: Final = "chronolog.events"
ENVELOPE: Final = f"{NAMESPACE}.Event"
MARKER: Final = b"\xc3\x01"
HEADER_SIZE: Final = len(MARKER) + 8

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MS: Final = timedelta(milliseconds=1)
_VERSION_DIR: Final = re.compile(r"v(\d+)")
_ENCODE_ERRORS: Final = (ValueError, TypeError, KeyError, AttributeError, OverflowError)
# What fastavro and the Python mapping raise on bytes that do not fit the writer schema.
_DECODE_ERRORS: Final = (
    EOFError,
    ValueError,
    TypeError,
    KeyError,
    IndexError,
    OverflowError,
    SchemaResolutionError,
)

_Convert: TypeAlias = Callable[[Any], Any]
_NESTED_RECORDS: Final = (JobSpec, Hook)
"""Dataclasses that travel as Avro records inside a payload."""


# --- schema files ------------------------------------------------------------------


def schema_versions(root: Path = SCHEMA_ROOT) -> list[str]:
    """Published schema versions under ``root``, oldest first: ``["v1", "v2", ...]``."""
    names = [p.name for p in root.iterdir() if p.is_dir() and _VERSION_DIR.fullmatch(p.name)]
    return sorted(names, key=lambda name: int(name[1:]))


def load_event_schema(directory: Path) -> Schema:
    """Parse the envelope schema in ``directory``; named types load from sibling files."""
    return typing.cast(Schema, load_schema(str(directory / f"{ENVELOPE}.avsc")))


def schema_fingerprint(schema: Schema) -> bytes:
    """The 8-byte CRC-64-AVRO fingerprint, in the byte order single-object encoding uses."""
    # fastavro hex-encodes the fingerprint's little-endian bytes, as Java's encoder writes them.
    return bytes.fromhex(fingerprint(to_parsing_canonical_form(schema), "CRC-64-AVRO"))


# --- the codec ---------------------------------------------------------------------


class EventCodec:
    """Encodes events with one schema; decodes events written with any known schema.

    Args:
        schema: the current schema: events are written with it, and read into it.
        readable: older (or, in tests, newer) writer schemas this codec can decode.
    """

    def __init__(self, schema: Schema, *, readable: Iterable[Schema] = ()) -> None:
        self._schema = schema
        self._fingerprint = schema_fingerprint(schema)
        self._header = MARKER + self._fingerprint
        # writer fingerprint -> (writer schema, reader schema or None when they are the same)
        self._resolvers: dict[bytes, tuple[Schema, Schema | None]] = {
            self._fingerprint: (schema, None)
        }
        for writer in readable:
            self._resolvers.setdefault(schema_fingerprint(writer), (writer, schema))

    @classmethod
    def default(cls) -> EventCodec:
        """The shared codec over every version in ``events/schemas``, writing the newest."""
        return _default_codec()

    @classmethod
    def from_versions(cls, root: Path = SCHEMA_ROOT) -> EventCodec:
        """A codec that reads every version under ``root`` and writes the newest."""
        versions = schema_versions(root)
        if not versions:
            raise FileNotFoundError(f"no schema versions (v1, v2, ...) under {root}")
        schemas = [load_event_schema(root / version) for version in versions]
        logger.debug("loaded event schema versions %s from %s", versions, root)
        return cls(schemas[-1], readable=schemas[:-1])

    @property
    def fingerprint(self) -> bytes:
        """Fingerprint of the schema this codec writes with."""
        return self._fingerprint

    @property
    def known_fingerprints(self) -> frozenset[bytes]:
        """Fingerprints of every writer schema this codec can decode."""
        return frozenset(self._resolvers)

    def encode(self, event: Event) -> bytes:
        """Single-object encoding of ``event``. Raises ``ValueError`` for invalid events."""
        return self.encode_record(_event_to_record(event))

    def decode(self, data: bytes) -> Event:
        """The event in ``data``. Raises ``SchemaNotFound`` or ``MalformedEvent``."""
        record = self.decode_record(data)
        try:
            return _record_to_event(record)
        except _DECODE_ERRORS as e:
            raise MalformedEvent(f"event {record.get('event_id')}: {e}") from e

    def encode_record(self, record: Mapping[str, Any]) -> bytes:
        """Single-object encoding of a raw Avro record (payload as ``(fullname, dict)``)."""
        buf = io.BytesIO()
        buf.write(self._header)
        try:
            schemaless_writer(buf, self._schema, record)
        except _ENCODE_ERRORS as e:
            raise ValueError(
                f"cannot encode event {record.get('event_id')} ({record.get('type')}) "
                f"with schema {self._fingerprint.hex()}: {_shorten(e)}"
            ) from e
        return buf.getvalue()

    def decode_record(self, data: bytes) -> dict[str, Any]:
        """The raw Avro record in ``data``, resolved to this codec's schema."""
        fingerprint_ = self._check_header(data)
        writer, reader = self._resolvers[fingerprint_]
        buf = io.BytesIO(data)
        buf.seek(HEADER_SIZE)
        try:
            datum = schemaless_reader(
                buf, writer, reader, return_record_name=True, return_record_name_override=True
            )
        except _DECODE_ERRORS as e:
            raise MalformedEvent(
                f"cannot decode {len(data)}-byte event written with schema "
                f"{fingerprint_.hex()}: {_shorten(e) or type(e).__name__}"
            ) from e
        record = typing.cast(dict[str, Any], datum)
        if buf.tell() != len(data):
            raise MalformedEvent(
                f"{len(data) - buf.tell()} trailing bytes after event {record.get('event_id')}"
            )
        return record

    def _check_header(self, data: bytes) -> bytes:
        if len(data) < HEADER_SIZE or data[:2] != MARKER:
            raise MalformedEvent(
                f"not a single-object-encoded event: {len(data)} bytes starting "
                f"{bytes(data[:HEADER_SIZE]).hex()}, expected marker {MARKER.hex()} + 8 bytes"
            )
        fingerprint_ = bytes(data[2:HEADER_SIZE])
        if fingerprint_ not in self._resolvers:
            raise SchemaNotFound(fingerprint_)
        return fingerprint_


@functools.cache
def _default_codec() -> EventCodec:
    return EventCodec.from_versions(SCHEMA_ROOT)


def _shorten(error: BaseException, limit: int = 300) -> str:
    # fastavro quotes the whole schema in some messages.
    text = str(error)
    return text if len(text) <= limit else text[:limit] + "..."


# --- Python objects <-> Avro records -----------------------------------------------


@dataclass(frozen=True, slots=True)
class _RecordMap:
    """How one frozen dataclass converts to and from its Avro record."""

    cls: type[Any]
    fullname: str
    names: frozenset[str]
    plain: tuple[str, ...]
    encoders: tuple[tuple[str, _Convert], ...]
    decoders: tuple[tuple[str, _Convert], ...]
    build: Callable[[Mapping[str, Any]], Any]  # from_avro for a record of exactly ``names``

    def to_avro(self, obj: Any) -> dict[str, Any]:
        record = {name: getattr(obj, name) for name in self.plain}
        for name, encode in self.encoders:
            record[name] = encode(getattr(obj, name))
        return record

    def from_avro(self, record: Mapping[str, Any]) -> Any:
        # Fields the class lacks (added by a reader schema) are dropped; fields the
        # record lacks (removed by a reader schema) take the class default.
        if record.keys() == self.names:  # the usual case: one C set comparison
            return self.build(record)
        if record.keys() <= self.names:
            kwargs = dict(record)
        else:
            kwargs = {name: value for name, value in record.items() if name in self.names}
        for name, decode in self.decoders:
            if name in kwargs:
                kwargs[name] = decode(kwargs[name])
        return self.cls(**kwargs)


def _record_map(cls: type[Any]) -> _RecordMap:
    hints = typing.get_type_hints(cls)
    plain: list[str] = []
    encoders: list[tuple[str, _Convert]] = []
    decoders: list[tuple[str, _Convert]] = []
    for field_ in fields(cls):
        encode, decode = _converters(hints[field_.name])
        if encode is None:
            plain.append(field_.name)
        else:
            encoders.append((field_.name, encode))
        if decode is not None:
            decoders.append((field_.name, decode))
    names = [field_.name for field_ in fields(cls)]
    fullname = f"{NAMESPACE}.{cls.__name__}"
    build = _builder(cls, names, dict(decoders))
    return _RecordMap(
        cls, fullname, frozenset(names), tuple(plain), tuple(encoders), tuple(decoders), build
    )


def _builder(
    cls: type[Any], names: list[str], decoders: Mapping[str, _Convert]
) -> Callable[[Mapping[str, Any]], Any]:
    """``cls`` from a record holding exactly its fields, each through its decoder, as one
    generated function (as ``dataclasses`` makes ``__init__``): no dict copy and no loop
    over the fields per event, which the projector decodes by the thousand."""
    namespace: dict[str, Any] = {"cls": cls}
    arguments = []
    for index, name in enumerate(names):  # dataclass field names: identifiers
        if name in decoders:
            namespace[f"decode_{index}"] = decoders[name]
            arguments.append(f"{name}=decode_{index}(record[{name!r}])")
        else:
            arguments.append(f"{name}=record[{name!r}]")
    source = f"def build(record):\n    return cls({', '.join(arguments)})\n"
    exec(source, namespace)  # the source is made of the class's field names only
    return typing.cast(Callable[[Mapping[str, Any]], Any], namespace["build"])


def _converters(hint: Any) -> tuple[_Convert | None, _Convert | None]:
    """(to Avro, from Avro) converters for a field annotated ``hint``; None = as is."""
    inner = _optional_of(hint)
    if inner is not None:
        encode, decode = _converters(inner)
        return _or_none(encode), _or_none(decode)
    origin = typing.get_origin(hint)
    if hint is Any or (origin is dict and typing.get_args(hint)[1] is Any):
        return _dump_json, json.loads
    if origin is tuple:
        # A tuple inside an Avro union would read as fastavro's (name, value) notation.
        return list, tuple
    if hint is datetime:
        return _to_millis, None
    if hint in _NESTED_RECORDS:
        nested = _record_map(hint)
        return nested.to_avro, nested.from_avro
    return None, None


def _optional_of(hint: Any) -> Any:
    """``X`` for ``X | None``, else None."""
    if not (isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union):
        return None
    args = typing.get_args(hint)
    others = [arg for arg in args if arg is not type(None)]
    return others[0] if len(args) == 2 and len(others) == 1 else None


def _or_none(convert: _Convert | None) -> _Convert | None:
    if convert is None:
        return None

    def convert_or_none(value: Any) -> Any:
        return None if value is None else convert(value)

    return convert_or_none


_dump_json: Final = functools.partial(
    json.dumps, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
)


def _to_millis(moment: datetime) -> int:
    if moment.tzinfo is None:
        raise ValueError(f"naive datetime {moment.isoformat()}: events need timezone-aware UTC")
    return (moment - _EPOCH) // _MS


@functools.cache
def _payload_maps() -> dict[type[Any], _RecordMap]:
    return {cls: _record_map(cls) for cls in PAYLOAD_TYPES}


@functools.cache
def _payload_maps_by_name() -> dict[str, _RecordMap]:
    return {mapping.fullname: mapping for mapping in _payload_maps().values()}


def _event_to_record(event: Event) -> dict[str, Any]:
    mapping = _payload_maps().get(type(event.payload))
    if mapping is None:
        raise ValueError(f"event {event.event_id}: {type(event.payload)!r} is not a payload type")
    try:
        body = mapping.to_avro(event.payload)
        occurred_at = _to_millis(event.occurred_at)
    except (ValueError, TypeError) as e:
        raise ValueError(f"cannot encode event {event.event_id} ({event.type}): {e}") from e
    return {
        "event_id": event.event_id,
        "type": mapping.cls.__name__,
        "job_id": event.job_id,
        "run_id": event.run_id,
        "attempt": event.attempt,
        "occurred_at": occurred_at,
        "actor": event.actor,
        "correlation_id": event.correlation_id,
        "causation_id": event.causation_id,
        "actor_role": event.actor_role,
        "request_id": event.request_id,
        "payload": (mapping.fullname, body),
    }


def _record_to_event(record: Mapping[str, Any]) -> Event:
    name, body = record["payload"]
    mapping = _payload_maps_by_name().get(name)
    if mapping is None:
        raise MalformedEvent(f"event {record['event_id']}: unknown payload record {name}")
    if record["type"] != mapping.cls.__name__:
        raise MalformedEvent(
            f"event {record['event_id']}: type {record['type']!r} but payload {name}"
        )
    return Event(
        payload=mapping.from_avro(body),
        occurred_at=record["occurred_at"],
        actor=record["actor"],
        job_id=record["job_id"],
        run_id=record["run_id"],
        attempt=record["attempt"],
        correlation_id=record["correlation_id"],
        causation_id=record["causation_id"],
        event_id=record["event_id"],
        actor_role=record.get("actor_role"),
        request_id=record.get("request_id"),
    )
