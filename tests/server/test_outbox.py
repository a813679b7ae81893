"""The transactional outbox against a real local receiver: delivery in both modes, signatures, retry with
backoff, dead letters, type filters, and that an event exists only if its transaction committed."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta

import pytest

from accessproof.server import outbox as O
from accessproof.server.cloudevents import parse_http, verify_signature
from accessproof.server.outbox import Backoff, Endpoint, OutboxError

LATER = timedelta(hours=2)


def later() -> datetime:
    return datetime.now(UTC) + LATER


def finding_event(store, n: int = 1):
    return O.new_event(store, "finding.opened", f"finding-{n}", {"finding_id": f"finding-{n}", "n": n},
                       id=f"ev-{n}")


def test_delivered_in_structured_mode_signed_and_recorded(store, receiver):
    O.add_endpoint(store, Endpoint("siem", receiver.url, "structured", secret="k1"))
    assert O.emit(store, [finding_event(store)]) == 1
    report = O.deliver_due(store)
    assert report.as_dict() == {"attempted": 1, "delivered": 1, "retrying": 0, "dead": 0}
    [req] = receiver.requests
    assert req.headers["content-type"].startswith("application/cloudevents+json")
    assert verify_signature("k1", req.headers["accessproof-signature"], req.body)
    got = parse_http(req.headers, req.body)
    assert (got["id"], got["type"], got["subject"], got["data"]["n"]) == (
        "ev-1", "io.accessproof.finding.opened", "finding-1", 1)
    [row] = O.list_events(store)
    assert (row["status"], row["attempts"], row["last_status"]) == ("delivered", 1, 200)
    [attempt] = O.attempts(store, "ev-1")
    assert (attempt["outcome"], attempt["status_code"], attempt["attempt"]) == ("delivered", 200, 1)
    assert O.deliver_due(store, now=later()).attempted == 0  # nothing is sent twice


def test_binary_mode_endpoint_gets_ce_headers(store, receiver):
    O.add_endpoint(store, Endpoint("tickets", receiver.url, "binary", secret="k2"))
    O.emit(store, [finding_event(store, 7)])
    O.deliver_due(store)
    [req] = receiver.requests
    assert req.headers["ce-specversion"] == "1.0" and req.headers["ce-id"] == "ev-7"
    assert req.headers["content-type"] == "application/json"
    assert json.loads(req.body) == {"finding_id": "finding-7", "n": 7}
    assert verify_signature("k2", req.headers["accessproof-signature"], req.body)


def test_retried_with_backoff_until_the_receiver_recovers(store, receiver):
    receiver.fail_first = 2
    O.add_endpoint(store, Endpoint("flaky", receiver.url, secret="k", max_attempts=5))
    O.emit(store, [finding_event(store)])
    backoff = Backoff(base=60, factor=2, jitter=0.5)
    first = O.deliver_due(store, backoff=backoff)
    assert first.as_dict() == {"attempted": 1, "delivered": 0, "retrying": 1, "dead": 0}
    assert O.deliver_due(store, backoff=backoff).attempted == 0  # not due yet: it waits for its backoff
    [row] = O.list_events(store)
    a1 = O.attempts(store, "ev-1")[0]
    wait = (row["next_attempt"] - a1["attempted"]).total_seconds()
    assert 30 <= wait <= 60  # base 60 s, jitter takes off at most half
    assert O.deliver_due(store, backoff=backoff, now=later()).retrying == 1
    a2 = O.attempts(store, "ev-1")[1]
    wait2 = (O.list_events(store)[0]["next_attempt"] - a2["attempted"]).total_seconds()
    assert 60 <= wait2 <= 120  # doubled after the second failure
    assert O.deliver_due(store, backoff=backoff, now=later() + LATER).delivered == 1
    assert [a["outcome"] for a in O.attempts(store, "ev-1")] == ["retry", "retry", "delivered"]
    assert [a["status_code"] for a in O.attempts(store, "ev-1")] == [503, 503, 200]
    assert len(receiver.requests) == 3
    assert len({r.headers["ce-id"] if "ce-id" in r.headers else json.loads(r.body)["id"]
                for r in receiver.requests}) == 1  # the same event id every time: receivers dedupe on it
    assert all(verify_signature("k", r.headers["accessproof-signature"], r.body) for r in receiver.requests)


def test_dead_lettered_after_max_attempts_visible_and_requeueable(store, receiver):
    receiver.fail_first = 10**6
    receiver.fail_status = 500
    O.add_endpoint(store, Endpoint("down", receiver.url, max_attempts=3))
    O.emit(store, [finding_event(store)])
    t = datetime.now(UTC)
    outcomes = []
    for i in range(5):
        outcomes.append(O.deliver_due(store, backoff=Backoff(base=1), now=t + timedelta(hours=i)).as_dict())
    assert [o["attempted"] for o in outcomes] == [1, 1, 1, 0, 0]
    assert outcomes[2]["dead"] == 1
    [dead] = O.list_events(store, status="dead")
    assert (dead["event_id"], dead["attempts"], dead["last_status"]) == ("ev-1", 3, 500)
    assert "HTTP 500" in dead["last_error"]
    assert O.counts(store) == {"dead": 1, "recorded": 0}
    assert [a["outcome"] for a in O.attempts(store, "ev-1")] == ["retry", "retry", "dead"]
    assert O.requeue(store, event_id="ev-1") == 1
    receiver.fail_first = 0
    receiver.requests.clear()
    assert O.deliver_due(store).delivered == 1


def test_an_unreachable_endpoint_is_an_attempt_with_the_reason(store):
    O.add_endpoint(store, Endpoint("nowhere", "http://127.0.0.1:9/hook", max_attempts=2))
    O.emit(store, [finding_event(store)])
    assert O.deliver_due(store, timeout=2).retrying == 1
    [a] = O.attempts(store, "ev-1")
    assert a["status_code"] is None and a["error"].startswith("Connect")


def test_a_rolled_back_change_leaves_no_event_and_a_committed_one_does(store, receiver):
    O.add_endpoint(store, Endpoint("siem", receiver.url))
    store.execute("CREATE TABLE things (x INTEGER)")
    store.execute("BEGIN TRANSACTION")
    store.execute("INSERT INTO things VALUES (1)")
    O.emit(store, [finding_event(store, 1)])
    store.execute("ROLLBACK")
    assert store.query("SELECT count(*) FROM outbox")[0][0] == 0
    assert store.query("SELECT count(*) FROM outbox_deliveries")[0][0] == 0
    store.execute("BEGIN TRANSACTION")
    store.execute("INSERT INTO things VALUES (2)")
    O.emit(store, [finding_event(store, 2)])
    store.execute("COMMIT")
    assert store.query("SELECT event_id FROM outbox")[0][0] == "ev-2"
    assert O.deliver_due(store).delivered == 1


def test_type_filters_and_dedupe(store, receiver):
    O.add_endpoint(store, Endpoint("findings", receiver.url, types=["finding.*"]))
    O.add_endpoint(store, Endpoint("all", receiver.url))
    cp = O.new_event(store, "checkpoint.published", "12", {"size": 12}, id="cp-12")
    assert O.emit(store, [finding_event(store), cp]) == 2
    assert O.emit(store, [finding_event(store), cp]) == 0  # same ids: written once
    rows = {(r["event_id"], r["endpoint"]) for r in O.list_events(store)}
    assert rows == {("ev-1", "findings"), ("ev-1", "all"), ("cp-12", "all")}


def test_bad_endpoints_are_refused_with_one_line(store):
    for ep, msg in ((Endpoint("x", "ftp://host/"), "not an http"), (Endpoint("x", "http://h/", "batched"), "mode"),
                    (Endpoint("x y", "http://h/"), "name"), (Endpoint("x", "http://h/", types=["nope.*"]), "matches none"),
                    (Endpoint("x", "http://h/", max_attempts=0), "max_attempts")):
        with pytest.raises(OutboxError, match=msg):
            O.add_endpoint(store, ep)
    O.add_endpoint(store, Endpoint("x", "http://h/"))
    with pytest.raises(OutboxError, match="exists"):
        O.add_endpoint(store, Endpoint("x", "http://h/"))


def test_removing_an_endpoint_dead_letters_its_pending_deliveries(store, receiver):
    O.add_endpoint(store, Endpoint("gone", receiver.url))
    O.emit(store, [finding_event(store)])
    assert O.remove_endpoint(store, "gone")
    [row] = O.list_events(store)
    assert (row["status"], row["last_error"]) == ("dead", "endpoint removed")
    assert O.deliver_due(store).attempted == 0


def test_backoff_grows_exponentially_with_bounded_jitter():
    b = Backoff(base=5, factor=2, cap=60, jitter=0.5)
    rng = random.Random(1)
    for failures, full in ((1, 5), (2, 10), (3, 20), (4, 40), (5, 60), (9, 60)):
        d = [b.delay(failures, rng) for _ in range(200)]
        assert all(full * 0.5 <= x <= full for x in d)
        assert max(d) - min(d) > full * 0.3  # jittered, not constant
