"""Controls as code: a catalogue of controls (metadata YAML + one SQL query each), an access policy,
findings with exceptions, and accuracy scoring against the demo's ground truth."""

from accessproof.controls.engine import (
    Assessment,
    Control,
    ControlError,
    assess,
    bind,
    load_catalogue,
    select_controls,
    transpile,
)
from accessproof.controls.findings import latest_runs, list_findings, run_results, runs_of
from accessproof.controls.policy import Policy, PolicyError, check_policy, load_policy

__all__ = [
    "Assessment",
    "Control",
    "ControlError",
    "Policy",
    "PolicyError",
    "assess",
    "bind",
    "check_policy",
    "latest_runs",
    "list_findings",
    "load_catalogue",
    "load_policy",
    "run_results",
    "runs_of",
    "select_controls",
    "transpile",
]
