"""CloudEvents 1.0 as accessproof sends them: both HTTP content modes against the spec's required attributes,
header percent-encoding, and the signature a receiver verifies."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from accessproof.server.cloudevents import (
    SIGNATURE_HEADER,
    CloudEvent,
    CloudEventError,
    parse_http,
    percent_encode,
    sign,
    to_http,
    verify_signature,
)

WHEN = datetime(2026, 6, 30, 7, 43, 32, 542000, tzinfo=UTC)


def event(**over) -> CloudEvent:
    base = {"type": "io.accessproof.finding.opened", "source": "urn:accessproof:accessproof.local/abc",
            "id": "f1", "subject": "finding-1", "time": WHEN,
            "data": {"finding_id": "finding-1", "reason": "grant of \"qms-approvers\" without approval"}}
    return CloudEvent(**{**base, **over})


def test_structured_mode_carries_every_attribute_in_a_json_body():
    headers, body = to_http(event(), "structured")
    assert headers["Content-Type"].startswith("application/cloudevents+json")
    doc = json.loads(body)
    # required context attributes (CloudEvents 1.0 §3.1): id, source, specversion, type
    assert doc["specversion"] == "1.0"
    assert doc["id"] == "f1"
    assert doc["source"] == "urn:accessproof:accessproof.local/abc"
    assert doc["type"] == "io.accessproof.finding.opened"
    assert doc["subject"] == "finding-1"
    assert doc["time"] == "2026-06-30T07:43:32.542000Z"  # RFC 3339, UTC
    assert doc["datacontenttype"] == "application/json"
    assert doc["data"]["reason"] == "grant of \"qms-approvers\" without approval"
    assert not any(k.lower().startswith("ce-") for k in headers)


def test_binary_mode_puts_attributes_in_ce_headers_and_data_in_the_body():
    headers, body = to_http(event(), "binary")
    assert headers["Content-Type"] == "application/json"  # datacontenttype maps to Content-Type ...
    assert "ce-datacontenttype" not in headers  # ... and MUST NOT also be a ce- header
    for attr, value in (("specversion", "1.0"), ("id", "f1"), ("type", "io.accessproof.finding.opened"),
                        ("source", "urn:accessproof:accessproof.local/abc"), ("subject", "finding-1"),
                        ("time", "2026-06-30T07:43:32.542000Z")):
        assert headers[f"ce-{attr}"] == value
    assert json.loads(body) == event().data


def test_header_values_are_percent_encoded_and_decode_back():
    subject = 'Niklas Wäng "100%" 😀'
    headers, body = to_http(event(subject=subject), "binary")
    encoded = headers["ce-subject"]
    assert all("!" <= ch <= "~" for ch in encoded) and " " not in encoded and '"' not in encoded
    assert encoded == "Niklas%20W%C3%A4ng%20%22100%25%22%20%F0%9F%98%80"
    assert percent_encode("Euro € 😀") == "Euro%20%E2%82%AC%20%F0%9F%98%80"  # the binding's own example
    assert parse_http(headers, body)["subject"] == subject


@pytest.mark.parametrize("mode", ["binary", "structured"])
def test_a_receiver_reads_the_same_event_in_either_mode(mode):
    e = event(time=datetime(2026, 6, 30, 9, 43, 32, tzinfo=timezone(timedelta(hours=2))), extensions={"severity": "high"})
    got = parse_http(*to_http(e, mode))
    assert {k: got[k] for k in ("specversion", "id", "source", "type", "subject", "time", "severity")} == {
        "specversion": "1.0", "id": "f1", "source": e.source, "type": e.type, "subject": "finding-1",
        "time": "2026-06-30T07:43:32Z", "severity": "high"}
    assert got["data"] == e.data


def test_events_without_required_attributes_or_with_bad_extensions_are_refused():
    with pytest.raises(CloudEventError, match="type"):
        event(type="")
    with pytest.raises(CloudEventError, match="source"):
        event(source="")
    with pytest.raises(CloudEventError, match="extension"):
        event(extensions={"Bad-Name": "x"})
    with pytest.raises(CloudEventError, match="mode"):
        to_http(event(), "batched")
    with pytest.raises(CloudEventError, match="missing id"):
        parse_http({"ce-specversion": "1.0", "ce-type": "t", "ce-source": "s", "content-type": "application/json"}, b"{}")
    with pytest.raises(CloudEventError, match="not valid"):
        parse_http({"content-type": "application/cloudevents+json"}, b"{not json")


def test_a_receiver_verifies_the_signature_and_refuses_forged_tampered_or_stale_ones():
    _, body = to_http(event(), "structured")
    now = 1_780_000_000
    header = sign("s3cret", body, now)
    assert header.startswith(f"t={now},v1=")
    assert verify_signature("s3cret", header, body, now=now + 10)
    assert not verify_signature("other", header, body, now=now)  # forged: wrong key
    assert not verify_signature("s3cret", header, body + b" ", now=now)  # body changed
    assert not verify_signature("s3cret", header, body, now=now + 301)  # stale: replayed later
    assert not verify_signature("s3cret", header.replace(f"t={now}", f"t={now + 5}"), body, now=now)  # time changed
    assert not verify_signature("s3cret", "garbage", body, now=now)
    assert not verify_signature("s3cret", None, body, now=now)
    assert SIGNATURE_HEADER == "Accessproof-Signature"
