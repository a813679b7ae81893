"""The JSON record reader on the real samples and on broken input."""

from __future__ import annotations

import gzip
import json

import orjson

from accessproof.sources import base
from accessproof.sources.base import iter_json_records, iter_paths
from tests.conftest import dev_data


def _records(path):
    return list(iter_json_records(path))


def test_every_real_sample_record_is_cut_out_exactly():
    expected = {"cloudtrail": 438 + 310, "okta": 53, "entra": 46 + 4, "github": 92}
    for folder, n in expected.items():
        chunks = [c for p in iter_paths([dev_data() / folder]) for c in iter_json_records(p)]
        assert len(chunks) == n, folder
        assert all(c.error is None for c in chunks), folder
        for c in chunks:  # the bytes are one whole JSON object each
            assert isinstance(orjson.loads(c.data), dict)


def test_array_elements_keep_their_exact_bytes_and_byte_offsets():
    path = dev_data() / "cloudtrail" / "stratus" / "aws.persistence.iam-create-admin-user.json"
    raw = path.read_bytes()
    chunks = _records(path)
    assert chunks and all(c.obj is not None for c in chunks)
    for c in chunks:
        offset = int(c.position.rsplit("@", 1)[1])
        assert raw[offset:offset + len(c.data)] == c.data
        assert json.loads(c.data) == c.obj


def test_records_wrapper_gzip_and_small_read_chunks(tmp_path, monkeypatch):
    events = [orjson.loads(line) for line in (dev_data() / "cloudtrail" / "panther-tests.jsonl").read_bytes().splitlines()[:50]]
    body = orjson.dumps({"Records": events})
    p = tmp_path / "111122223333_CloudTrail_us-east-1.json.gz"
    p.write_bytes(gzip.compress(body))
    monkeypatch.setattr(base, "_CHUNK", 997)  # force elements to straddle read boundaries
    chunks = _records(p)
    assert [orjson.loads(c.data) for c in chunks] == events
    assert all(c.error is None for c in chunks)


def test_malformed_lines_are_set_aside_and_the_rest_still_reads(tmp_path):
    p = tmp_path / "x.jsonl"
    p.write_bytes(b'{"a": 1}\n{"a": \n\xff\xfe{"bad utf8": "\xff"}\n\n{"a": 3}\n')
    chunks = _records(p)
    assert [c.position.rsplit(":", 1)[1] for c in chunks] == ["1", "2", "3", "5"]
    assert chunks[0].error is None and chunks[3].error is None
    # line-level content errors are decided by the engine's parse (orjson rejects invalid UTF-8)
    for c in chunks[1:3]:
        try:
            orjson.loads(c.data)
            raise AssertionError("should not parse")
        except orjson.JSONDecodeError:
            pass


def test_overlong_line_is_one_error_and_is_not_held_in_memory(tmp_path, monkeypatch):
    monkeypatch.setattr(base, "MAX_RECORD_BYTES", 10_000)
    p = tmp_path / "big.jsonl"
    p.write_bytes(b'{"a": 1}\n' + b'{"x": "' + b"y" * 50_000 + b'"}\n' + b'{"a": 2}\n')
    chunks = _records(p)
    assert len(chunks) == 3
    assert chunks[1].error and "exceeds" in chunks[1].error and chunks[1].data == b""
    assert chunks[2].error is None and orjson.loads(chunks[2].data) == {"a": 2}


def test_truncated_gzip_keeps_what_was_read_and_reports_the_file(tmp_path):
    lines = b"".join(b'{"n": %d, "pad": "%s"}\n' % (i, b"z" * 200) for i in range(2000))
    whole = gzip.compress(lines)
    p = tmp_path / "cut.jsonl.gz"
    p.write_bytes(whole[: len(whole) // 2])
    chunks = _records(p)
    good = [c for c in chunks if c.error is None]
    bad = [c for c in chunks if c.error]
    assert len(good) > 100
    assert len(bad) == 1 and "truncated" in bad[0].error


def test_truncated_array_is_reported(tmp_path):
    p = tmp_path / "cut.json"
    p.write_bytes(b'[{"a": 1}, {"a": 2}, {"a": ')
    chunks = _records(p)
    assert [c.error is None for c in chunks] == [True, True, False]
    assert "malformed JSON" in chunks[2].error or "not closed" in chunks[2].error


def test_invalid_utf8_inside_an_array_sets_aside_only_that_element(tmp_path):
    p = tmp_path / "arr.json"
    p.write_bytes(b'[{"a": "ok"}, {"a": "\xff\xfe"}, {"a": "fine"}]')
    chunks = _records(p)
    assert [c.error for c in chunks] == [None, "invalid UTF-8 in record", None]


def test_pretty_printed_wrapper_document(tmp_path):
    p = tmp_path / "sn.json"
    p.write_text(json.dumps({"result": [{"number": "RITM0010001"}, {"number": "RITM0010002"}]}, indent=2))
    chunks = _records(p)
    assert [c.obj["number"] for c in chunks] == ["RITM0010001", "RITM0010002"]


def test_line_blocks_cut_the_same_records_as_the_record_reader(tmp_path, monkeypatch):
    """The block reader (the bulk ingest path) and the record reader give the same lines, positions and
    errors: blank lines, CRLF, an over-long line, reads that end mid-line, plain, .gz and a cut .gz."""
    monkeypatch.setattr(base, "MAX_RECORD_BYTES", 10_000)
    monkeypatch.setattr(base, "_CHUNK", 997)
    monkeypatch.setattr(base, "_BLOCK", 4096)
    body = (b'{"a": 1}\r\n\n   \n{"x": "' + b"y" * 50_000 + b'"}\n'
            + b"".join(b'{"n": %d}\n' % i for i in range(3000)) + b'{"last": true}')
    for name, data in (("x.jsonl", body), ("x.jsonl.gz", gzip.compress(body)),
                       ("cut.jsonl.gz", gzip.compress(body)[:-300])):
        p = tmp_path / name
        p.write_bytes(data)
        flat = []
        for item in iter_json_records(p, line_blocks=True):
            if isinstance(item, base.LineBlock):
                for i, line in enumerate(item.data.split(b"\n")):
                    if (c := base.line_chunk(line, str(p), item.first_line + i)) is not None:
                        flat.append(c)
            else:
                flat.append(item)
        expected = _records(p)
        assert len(expected) > 3000 or name.startswith("cut")
        assert [(c.data, c.position, c.error) for c in flat] == [(c.data, c.position, c.error) for c in expected]
