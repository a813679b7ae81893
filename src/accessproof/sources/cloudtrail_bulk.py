"""CloudTrail's bulk path: read-only noise recognised from its bytes and normalised by the database.

Most CloudTrail volume is read-only API noise (Describe*, List*, Get*) that becomes ``other`` events.
Building each in Python costs ~10 µs; instead ``bulk_accepts`` recognises such a record with a few byte
searches (no JSON parse), and the engine hands a whole batch of them to the database, which parses
them in C++ with ``BULK_SQL`` on its writer thread while Python reads the next batch.

The SQL reproduces ``cloudtrail._other_event`` exactly for the records ``bulk_accepts`` lets through
(a test compares the two on every sample record and on generated volume). Anything unusual — tags,
a source identity, an event we map, an uncommon caller type, a timestamp not in CloudTrail's own
format — is left to the Python path, which sees every field.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import pyarrow as pa
import pyarrow.compute as pc

from accessproof.sources.base import MAX_RECORD_BYTES

# The patterns are written for both Python's ``re`` and RE2 (Arrow's compute kernels): whitespace is
# spelled out (the two disagree on ``\s``) and nothing needs backtracking.
_S = "[ \\t\\n\\r\\x0b\\x0c]*"
_NAME_PATTERN = f'"eventName"{_S}:{_S}"(?P<name>[A-Za-z0-9]{{1,128}})"'
_READ_ONLY_PATTERN = '"readOnly": ?true'
_OBJECT_PATTERN = f"^{_S}\\{{"  # a JSON object, not an array holding one
_TIME_PATTERN = f'"eventTime"{_S}:{_S}"[0-9]{{4}}-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9]Z"'
_ID_PATTERN = f'"eventID"{_S}:{_S}"[0-9A-Fa-f-]{{36}}"'
_CALLER_PATTERN = f'"userIdentity"{_S}:{_S}\\{{{_S}"type"{_S}:{_S}"(?:IAMUser|AssumedRole|AWSService|Root)"'
#: fields through which the Python path may find an approval reference, tags or a source identity
_FULL_PATH_FIELDS = ("sourceIdentity", "tags", "principalTags", "roleSessionName", "description",
                     "transitiveTagKeys", "eventname", "useridentity")
#: the fields ``BULK_SQL`` reads (by their last key): each must be a string or null, as the Python path
#: reads a number, boolean or object differently from ``json_extract_string``
_READ_KEYS = ("eventID", "eventName", "eventTime", "eventSource", "awsRegion", "errorCode", "errorMessage",
              "recipientAccountId", "sourceIPAddress", "userAgent", "type", "arn", "principalId", "userName",
              "invokedBy", "accountId")
_NOT_A_STRING_PATTERN = '"(?:' + "|".join(_READ_KEYS) + f')"{_S}:{_S}[^" \\t\\n\\r\\x0b\\x0cn]'
#: what sends a record to the Python path however it looks otherwise: a field it reads for tags or an
#: approval, a value that is not a string, and any byte or escape that could put a character other than
#: printable ASCII into a value (Python's strip removes Unicode and control whitespace, DuckDB's trim
#: only spaces; control bytes inside strings are not JSON to orjson)
_FULL_PATH_PATTERN = ('"(?:' + "|".join(_FULL_PATH_FIELDS) + ')"|' + _NOT_A_STRING_PATTERN
                      + '|\\\\[bfnrtu]|[\\x00-\\x1f\\x80-\\xff]')
#: top-level keys the SQL reads, each of which must appear once: given a key twice, orjson keeps the last
#: value and DuckDB's JSON functions the first ({"eventName":"ListUsers",…,"eventName":"CreateUser"}
#: must not become a ListUsers event). Nested repeats are not told apart from top-level ones here, so a
#: record with one nested somewhere takes the Python path too.
_ONCE_KEYS = ("eventName", "readOnly", "eventID", "eventTime", "eventSource", "awsRegion", "errorCode",
              "errorMessage", "recipientAccountId", "sourceIPAddress", "userAgent", "userIdentity")
_REPEATED_PATTERN = "|".join(f'"{k}".*"{k}"' for k in _ONCE_KEYS)

_NAME = re.compile(_NAME_PATTERN.encode())
_TIME = re.compile(_TIME_PATTERN.encode())
_ID = re.compile(_ID_PATTERN.encode())
_CALLER = re.compile(_CALLER_PATTERN.encode())
# ``_FULL_PATH_PATTERN`` in Python, in steps: ``re`` tries every branch of one alternation at every byte
_MARKERS = re.compile(('"(?:' + "|".join(_FULL_PATH_FIELDS) + ')"').encode())
_ONCE_MARKERS = tuple(f'"{k}"'.encode() for k in _ONCE_KEYS)
_NOT_A_STRING = re.compile(_NOT_A_STRING_PATTERN.encode())
_ESCAPE = re.compile(rb"\\[bfnrtu]")
_CONTROL_BYTES = bytes(range(32))
_OBJECT = re.compile(_OBJECT_PATTERN.encode())


class BulkRecogniser:
    """Recognises read-only noise that ``BULK_SQL`` normalises exactly like the Python path: one record
    at a time (calling it with the record's bytes) or a block of lines at once (``mask``)."""

    def __init__(self, mapped_names: Iterable[str]):
        names = sorted(n.encode() for n in mapped_names)
        self._mapped = frozenset(names)  # those events always take the Python path
        self._mapped_array = pa.array(names, pa.binary())

    def __call__(self, data: bytes) -> bool:
        """True when the record is read-only noise the bulk SQL normalises exactly like the Python path."""
        if b'"readOnly":true' not in data and b'"readOnly": true' not in data:
            return False
        m = _NAME.search(data)
        if m is None or m.group(1) in self._mapped or _OBJECT.match(data) is None:
            return False
        if not data.isascii() or len(data.translate(None, _CONTROL_BYTES)) != len(data):
            return False
        if (b"\\" in data and _ESCAPE.search(data) is not None) or _MARKERS.search(data) is not None:
            return False
        if _TIME.search(data) is None or _ID.search(data) is None or _CALLER.search(data) is None:
            return False
        if any(data.count(k) > 1 for k in _ONCE_MARKERS):
            return False
        return _NOT_A_STRING.search(data) is None

    def mask(self, lines: pa.Array) -> pa.Array:
        """The same test over a whole block of lines (Arrow compute, no Python per line).

        A line must also be within the record size limit (a line ending in ``\\r`` already fails the test),
        so that its bytes are the record's bytes as they are; anything else goes through the per-record
        path, which applies the test itself. A test holds the two equal.
        """

        def has(pattern: str) -> pa.Array:
            return pc.match_substring_regex(lines, pattern)

        name = pc.struct_field(pc.extract_regex(lines, _NAME_PATTERN), [0])
        mapped = pc.fill_null(pc.is_in(name, value_set=self._mapped_array), True)
        ok = pc.and_not(has(_READ_ONLY_PATTERN), mapped)
        for pattern in (_OBJECT_PATTERN, _TIME_PATTERN, _ID_PATTERN, _CALLER_PATTERN):
            ok = pc.and_(ok, has(pattern))
        ok = pc.and_not(ok, has(_FULL_PATH_PATTERN))
        ok = pc.and_not(ok, has(_REPEATED_PATTERN))
        return pc.and_(ok, pc.less_equal(pc.binary_length(lines), MAX_RECORD_BYTES))


def make_bulk_accepts(mapped_names: Iterable[str]) -> BulkRecogniser:
    """The recogniser for a source that maps ``mapped_names`` (those always take the Python path)."""
    return BulkRecogniser(mapped_names)


# ``t(x)`` is cloudtrail._text: trimmed, empty and CloudTrail's redaction marker are NULL. Values are
# printable ASCII here (see ``_FULL_PATH_PATTERN``), whose only whitespace is the space ``trim`` removes.
_T = "nullif(nullif(trim({}), ''), 'HIDDEN_DUE_TO_SECURITY_REASONS')"


def _t(expr: str) -> str:
    return _T.format(expr)


#: ``cloudtrail._base_attributes`` as JSON text, in its key order, absent values left out
_ATTRIBUTES = "'{' || concat_ws(',', " + ", ".join(
    f"'\"{key}\":' || to_json({col})" if col else f"'\"{key}\":true'"
    for key, col in (("event_source", "esrc"), ("aws_region", "region"), ("read_only", None),
                     ("error_code", "ecode"), ("error_message", "emsg"), ("recipient_account_id", "racct"),
                     ("identity_type", "kind"))
) + ") || '}'"

_PATHS = ["$.eventID", "$.eventName", "$.eventTime", "$.eventSource", "$.awsRegion", "$.errorCode",
          "$.errorMessage", "$.recipientAccountId", "$.sourceIPAddress", "$.userAgent", "$.userIdentity.type",
          "$.userIdentity.arn", "$.userIdentity.principalId", "$.userIdentity.userName",
          "$.userIdentity.invokedBy", "$.userIdentity.accountId",
          "$.userIdentity.sessionContext.sessionIssuer.userName"]

#: One row per row of ``bulk_json(_seq, sha256, j VARCHAR)``, in its order: ``parsed`` (false when ``j`` is
#: not well-formed JSON; the other columns are then meaningless), ``_seq`` and the event columns, raw_id
#: included. ``$source_name`` names the source instance (NULL: the account's). DuckDB dialect; only used
#: by stores that declare ``supports_bulk``.
BULK_SQL = f"""
WITH f AS (
  -- one parse per record: every field is extracted by a single multi-path call; malformed JSON gives
  -- NULL (``try``) and is sent back to the Python path, which says what is wrong with it
  SELECT _seq, sha256, v IS NOT NULL AS parsed,
         {_t("v[1]")} AS eid, {_t("v[2]")} AS name, v[3] AS etime, {_t("v[4]")} AS esrc,
         {_t("v[5]")} AS region, {_t("v[6]")} AS ecode, {_t("v[7]")} AS emsg, {_t("v[8]")} AS racct,
         {_t("v[9]")} AS ip, {_t("v[10]")} AS ua, {_t("v[11]")} AS kind, {_t("v[12]")} AS arn,
         {_t("v[13]")} AS pid, {_t("v[14]")} AS uname, {_t("v[15]")} AS invoked, {_t("v[16]")} AS uacct,
         {_t("v[17]")} AS issuer
  FROM (SELECT _seq, sha256, try(json_extract_string(j, {_PATHS})) AS v FROM bulk_json)
), a AS (
  SELECT *,
    coalesce(CASE WHEN strpos(after, '/') > 0 THEN nullif(after[strpos(after, '/') + 1:], '') END,
             CASE WHEN strpos(pid, ':') > 0 THEN nullif(pid[strpos(pid, ':') + 1:], '') END) AS session,
    coalesce(issuer, nullif(split_part(after, '/', 1), '')) AS role,
    CASE WHEN strpos(arn, ':user/') > 0 THEN nullif(regexp_extract(arn, '[^/]*$'), '') END AS arn_user
  FROM (SELECT *, CASE WHEN strpos(arn, ':assumed-role/') > 0
                       THEN arn[strpos(arn, ':assumed-role/') + 14:] END AS after FROM f)
)
SELECT
  parsed, _seq,
  coalesce(eid, sha256) AS event_id,  -- as the Python path: the record's SHA-256 when it has no id
  coalesce($source_name, 'aws:' || coalesce(racct, uacct, 'unknown')) AS source,
  'cloudtrail' AS source_type,
  CAST(etime AS TIMESTAMPTZ) AS time,
  'other' AS action,
  name AS vendor_action,
  CASE kind WHEN 'AWSService' THEN coalesce(invoked, pid) ELSE coalesce(arn, pid) END AS actor_id,
  CASE kind WHEN 'IAMUser' THEN coalesce(uname, arn_user)
            WHEN 'Root' THEN coalesce(uname, 'root')
            WHEN 'AWSService' THEN invoked
            ELSE coalesce(session, role, uname) END AS actor_name,
  CASE WHEN kind = 'AWSService' THEN 'service'
       WHEN kind = 'AssumedRole' AND NOT (coalesce(regexp_full_match(session, '[^@\\s/:]+@[^@\\s/:]+\\.[^@\\s/:]+'), false)
                                          OR coalesce(starts_with(role, 'AWSReservedSSO_'), false))
         THEN 'service'
       ELSE 'human' END AS actor_type,
  NULL AS target_system, NULL AS target_id, NULL AS target_name,
  NULL AS entitlement_type, NULL AS entitlement_id, NULL AS entitlement_name,
  NULL AS resource, NULL AS approval_ref, NULL AS environment, NULL AS business_unit,
  CASE WHEN ecode IS NOT NULL OR emsg IS NOT NULL THEN 'failure' ELSE 'success' END AS outcome,
  NULL AS before_json, NULL AS after_json,
  0 AS class_uid, 0 AS activity_id,
  ip AS src_ip, ua AS user_agent,
  substr(sha256('ev|' || coalesce($source_name, 'aws:' || coalesce(racct, uacct, 'unknown')) || '|'
                || coalesce(eid, sha256) || '|' || sha256), 1, 32) AS raw_id,
  {_ATTRIBUTES} AS attributes_json
FROM a
"""
