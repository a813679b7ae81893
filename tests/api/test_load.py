"""Load through the webhook, smaller than the 100k of ``bench/api`` but the same code path and checks:
a real uvicorn, concurrent signed deliveries with malformed lines and re-sent batches, and every event
accounted for — in the responses and, with the server stopped, in the store."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "api"


@pytest.mark.parametrize("source", ["cloudtrail", "okta"])
def test_webhook_load_is_all_accounted_for(tmp_path, source):
    run = subprocess.run([sys.executable, str(BENCH), "--events", "3000", "--batch", "200", "--concurrency", "3",
                          "--source", source, "--bad-share", "0.01", "--resend-every", "4", "--keep",
                          str(tmp_path / "work"), "--json"], capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    result = json.loads(run.stdout)
    acc = result["accounting"]
    # every 100th event is malformed; batches 3, 7 and 11 (200 events, 2 malformed each) go twice
    assert acc["sent"] == 3000 + 3 * 200
    assert acc["sent"] == acc["accepted"] + acc["duplicate"] + acc["quarantined"]
    assert (acc["accepted"], acc["duplicate"], acc["quarantined"]) == (2970, 3 * 198, 30 + 3 * 2)
    assert result["store"]["raw_records"] == acc["accepted"]
    assert result["store"]["quarantine"] == acc["quarantined"]
    assert result["zero_loss"] is True and all(v is True for k, v in result["checks"].items() if k != "failed_requests")
    assert result["checks"]["failed_requests"] == 0
