"""Date and time helpers shared by filters and metadata conversion."""

from __future__ import annotations

import datetime as _dt

from google.protobuf import timestamp_pb2


def as_utc(value: _dt.date) -> _dt.datetime:
    """Returns ``value`` as an aware UTC datetime.

    Naive datetimes are taken to be in UTC; a ``date`` means its midnight UTC.
    """
    if not isinstance(value, _dt.datetime):
        return _dt.datetime(value.year, value.month, value.day, tzinfo=_dt.timezone.utc)
    if value.tzinfo is None:
        return value.replace(tzinfo=_dt.timezone.utc)
    return value.astimezone(_dt.timezone.utc)


def rfc3339(value: _dt.date) -> str:
    """Formats a date or datetime as an RFC 3339 UTC string ("...Z").

    This is the form the server compares with timestamp bounds, so metadata
    datetimes written by this client can be filtered with ``$gt`` and friends.
    Fractions are written only when non-zero, as milliseconds when that is
    exact (the TypeScript SDK writes the same string for the same instant).
    """
    utc = as_utc(value)
    text = utc.strftime("%Y-%m-%dT%H:%M:%S")
    if utc.microsecond % 1000:
        text += f".{utc.microsecond:06d}"
    elif utc.microsecond:
        text += f".{utc.microsecond // 1000:03d}"  # as JavaScript's Date writes it
    return text + "Z"


def to_timestamp(value: _dt.date) -> timestamp_pb2.Timestamp:
    """Converts a date or datetime to a protobuf Timestamp (naive = UTC)."""
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(as_utc(value))
    return stamp


def from_timestamp(stamp: timestamp_pb2.Timestamp) -> _dt.datetime:
    """Converts a protobuf Timestamp to an aware UTC datetime."""
    return stamp.ToDatetime(tzinfo=_dt.timezone.utc)
