"""Synthetic CloudTrail and Okta events in the vendors' shapes, for benchmarks and crash tests.

Not the demo organisation (that is ``accessproof.demo``): this is volume, generated fast and streamed to
disk, with the mix real CloudTrail shows — mostly read-only API noise, a few IAM changes, sign-ins.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

ACCOUNT = "111122223333"
_NOISE = [
    ("ec2.amazonaws.com", "DescribeInstances"), ("ec2.amazonaws.com", "DescribeSecurityGroups"),
    ("s3.amazonaws.com", "ListBuckets"), ("s3.amazonaws.com", "GetBucketPolicy"),
    ("iam.amazonaws.com", "ListUsers"), ("iam.amazonaws.com", "GetUser"), ("sts.amazonaws.com", "GetCallerIdentity"),
    ("kms.amazonaws.com", "DescribeKey"), ("monitoring.amazonaws.com", "GetMetricData"),
    ("cloudtrail.amazonaws.com", "LookupEvents"), ("lambda.amazonaws.com", "ListFunctions20150331"),
]
_WRITES = ["CreateUser", "AddUserToGroup", "AttachUserPolicy", "CreateAccessKey", "DeleteAccessKey",
           "RemoveUserFromGroup", "DetachUserPolicy", "DeleteUser", "CreateLoginProfile"]
_OKTA_TYPES = ["user.session.start", "user.session.start", "user.session.start", "user.authentication.sso",
               "group.user_membership.add", "group.user_membership.remove", "user.lifecycle.create",
               "user.lifecycle.deactivate", "user.mfa.factor.activate", "application.user_membership.add"]


def _identity(i: int, user: str) -> dict:
    """A stable identity per user, as in real trails (one principal id and access key per user)."""
    return {"type": "IAMUser", "principalId": f"AIDA{i * 7919:016X}",
            "arn": f"arn:aws:iam::{ACCOUNT}:user/{user}", "accountId": ACCOUNT,
            "accessKeyId": f"AKIA{i * 104729:016X}", "userName": user}


def cloudtrail_events(n: int, seed: int = 1, write_share: float = 0.12) -> Iterator[dict]:
    rng = random.Random(seed)
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    users = [f"user{i:05d}" for i in range(2000)]
    for i in range(n):
        u = rng.randrange(len(users))
        user = users[u]
        when = t0 + timedelta(seconds=i * 3 + rng.randint(0, 2))
        ev = {
            "eventVersion": "1.09",
            "userIdentity": _identity(u, user),
            "eventTime": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        if rng.random() < write_share:
            name = rng.choice(_WRITES)
            target = rng.choice(users)
            params: dict = {"userName": target}
            if name in ("AttachUserPolicy", "DetachUserPolicy"):
                params["policyArn"] = "arn:aws:iam::aws:policy/ReadOnlyAccess"
            elif name in ("AddUserToGroup", "RemoveUserFromGroup"):
                params["groupName"] = rng.choice(["developers", "qms-approvers", "finance"])
            elif name == "CreateUser" and rng.random() < 0.5:
                params["tags"] = [{"key": "ticket", "value": f"RITM{rng.randint(10000, 99999):07d}"}]
            ev.update(eventSource="iam.amazonaws.com", eventName=name, awsRegion="us-east-1",
                      sourceIPAddress=f"198.51.100.{rng.randint(1, 254)}", userAgent="aws-cli/2.15.0",
                      requestParameters=params, responseElements=None, readOnly=False)
        else:
            src, name = rng.choice(_NOISE)
            ev.update(eventSource=src, eventName=name, awsRegion=rng.choice(["us-east-1", "eu-west-1"]),
                      sourceIPAddress=f"203.0.113.{rng.randint(1, 254)}",
                      userAgent="Boto3/1.34.0 Python/3.11.7", requestParameters=None,
                      responseElements=None, readOnly=True)
        ev.update(requestID=str(uuid.UUID(int=rng.getrandbits(128))),
                  eventID=str(uuid.UUID(int=rng.getrandbits(128))), eventType="AwsApiCall",
                  managementEvent=True, recipientAccountId=ACCOUNT, eventCategory="Management")
        yield ev


def okta_events(n: int, seed: int = 2) -> Iterator[dict]:
    rng = random.Random(seed)
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    for i in range(n):
        etype = rng.choice(_OKTA_TYPES)
        who = f"user{rng.randint(0, 1999):05d}@acme.example"
        target = [{"id": f"00u{rng.getrandbits(48):012x}", "type": "User", "alternateId": who,
                   "displayName": who.split("@")[0]}]
        if "membership" in etype:
            kind = "UserGroup" if etype.startswith("group") else "AppInstance"
            target.append({"id": f"00g{rng.getrandbits(48):012x}", "type": kind,
                           "alternateId": "unknown", "displayName": rng.choice(["developers", "qms-approvers"])})
        yield {
            "actor": {"id": f"00u{rng.getrandbits(48):012x}", "type": "User", "alternateId": who,
                      "displayName": who.split("@")[0]},
            "client": {"userAgent": {"rawUserAgent": "Mozilla/5.0", "os": "Mac OS X", "browser": "CHROME"},
                       "zone": "null", "device": "Computer", "ipAddress": f"198.51.100.{rng.randint(1, 254)}"},
            "authenticationContext": {"authenticationStep": 0, "externalSessionId": "102abc"},
            "displayMessage": etype.replace(".", " "),
            "eventType": etype,
            "outcome": {"result": "SUCCESS" if rng.random() < 0.95 else "FAILURE"},
            "published": (t0 + timedelta(seconds=i * 2)).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            "securityContext": {},
            "severity": "INFO",
            "debugContext": {"debugData": {"requestUri": "/api/v1/authn"}},
            "legacyEventType": "core.user_auth.login_success",
            "transaction": {"type": "WEB", "id": f"X{rng.getrandbits(64):016x}"},
            "uuid": str(uuid.UUID(int=rng.getrandbits(128))),
            "version": "0",
            "target": target,
        }


def write_jsonl(events: Iterator[dict], path: Path) -> int:
    n = 0
    with open(path, "wb") as f:
        for ev in events:
            f.write(orjson.dumps(ev) + b"\n")
            n += 1
    return n
