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
from collections.abc import Callable, Iterable

_NAME = re.compile(rb'"eventName"\s*:\s*"([A-Za-z0-9]{1,128})"')
_TIME = re.compile(rb'"eventTime"\s*:\s*"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"')
_ID = re.compile(rb'"eventID"\s*:\s*"[0-9A-Fa-f-]{36}"')
_CALLER = re.compile(rb'"userIdentity"\s*:\s*\{\s*"type"\s*:\s*"(?:IAMUser|AssumedRole|AWSService|Root)"')
#: fields through which the Python path may find an approval reference, tags or a source identity
_FULL_PATH_MARKERS = (b'"sourceIdentity"', b'"tags"', b'"principalTags"', b'"roleSessionName"',
                      b'"description"', b'"transitiveTagKeys"', b'"eventname"', b'"useridentity"')


def make_bulk_accepts(mapped_names: Iterable[str]) -> Callable[[bytes], bool]:
    """The recogniser for a source that maps ``mapped_names`` (those always take the Python path)."""
    mapped = frozenset(n.encode() for n in mapped_names)

    def bulk_accepts(data: bytes) -> bool:
        """True when the record is read-only noise the bulk SQL normalises exactly like the Python path."""
        if b'"readOnly":true' not in data and b'"readOnly": true' not in data:
            return False
        m = _NAME.search(data)
        if m is None or m.group(1) in mapped:
            return False
        for marker in _FULL_PATH_MARKERS:
            if marker in data:
                return False
        if _TIME.search(data) is None or _ID.search(data) is None or _CALLER.search(data) is None:
            return False
        if not data.isascii():
            try:
                data.decode("utf-8")
            except UnicodeDecodeError:
                return False
        return True

    return bulk_accepts


# ``t(x)`` is cloudtrail._text: trimmed, empty and CloudTrail's redaction marker are NULL.
_T = "nullif(nullif(trim({}), ''), 'HIDDEN_DUE_TO_SECURITY_REASONS')"


def _t(expr: str) -> str:
    return _T.format(expr)


#: One row per record of ``bulk_json(_seq, sha256, j JSON)``: the event columns (raw_id is added by the
#: engine) plus ``_seq``. DuckDB dialect; only used by stores that declare ``supports_bulk``.
BULK_SQL = f"""
WITH v AS (
  -- one parse per record: every field is extracted by a single multi-path call
  SELECT _seq, sha256, json_extract_string(j, ['$.eventID', '$.eventName', '$.eventTime', '$.eventSource', '$.awsRegion', '$.errorCode', '$.errorMessage', '$.recipientAccountId', '$.sourceIPAddress', '$.userAgent', '$.userIdentity.type', '$.userIdentity.arn', '$.userIdentity.principalId', '$.userIdentity.userName', '$.userIdentity.invokedBy', '$.userIdentity.accountId', '$.userIdentity.sessionContext.sessionIssuer.userName']) AS v
  FROM bulk_json
), f AS (
  SELECT _seq, sha256,
         {_t("v[1]")} AS eid,
         {_t("v[2]")} AS name,
         v[3] AS etime,
         {_t("v[4]")} AS esrc,
         {_t("v[5]")} AS region,
         {_t("v[6]")} AS ecode,
         {_t("v[7]")} AS emsg,
         {_t("v[8]")} AS racct,
         {_t("v[9]")} AS ip,
         {_t("v[10]")} AS ua,
         {_t("v[11]")} AS kind,
         {_t("v[12]")} AS arn,
         {_t("v[13]")} AS pid,
         {_t("v[14]")} AS uname,
         {_t("v[15]")} AS invoked,
         {_t("v[16]")} AS uacct,
         {_t("v[17]")} AS issuer
  FROM v
), r AS (
  SELECT *, CASE WHEN strpos(arn, ':assumed-role/') > 0 THEN arn[strpos(arn, ':assumed-role/') + 14:] END AS after
  FROM f
), a AS (
  SELECT *,
    coalesce(CASE WHEN strpos(after, '/') > 0 THEN nullif(after[strpos(after, '/') + 1:], '') END,
             CASE WHEN strpos(pid, ':') > 0 THEN nullif(pid[strpos(pid, ':') + 1:], '') END) AS session,
    coalesce(issuer, nullif(split_part(after, '/', 1), '')) AS role,
    CASE WHEN strpos(arn, ':user/') > 0 THEN nullif(regexp_extract(arn, '[^/]*$'), '') END AS arn_user
  FROM r
)
SELECT
  eid AS event_id,
  'aws:' || coalesce(racct, uacct, 'unknown') AS source,
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
  CAST(json_merge_patch('{{}}', json_object(
      'event_source', esrc, 'aws_region', region, 'read_only', true, 'error_code', ecode,
      'error_message', emsg, 'recipient_account_id', racct, 'identity_type', kind)) AS VARCHAR)
    AS attributes_json,
  _seq, sha256
FROM a
"""
