"""`rewardlab audit`: a reward-model card a team reads before putting a reward model into RLHF.

`run_audit` measures (held-out accuracy and calibration, slices, bias probes, over-optimization risk, examples) into
one JSON record; `build_card` lays it out for the one report renderer (`rewardlab.report`), which writes a
self-contained HTML page and Markdown; `compare_runs` / `build_comparison` put two models side by side, paired.
This package sits at the pipeline's edge: it composes `evaluate`, `rewards`, `data` and the annotation statistics of
`collect`, and nothing in the core imports it.
"""

from rewardlab.lazy import lazy_exports

#: imported on first use: the card and the run load torch, and the command line must not pay for that at start-up
__getattr__ = lazy_exports(__name__, {
    "build_card": "rewardlab.audit.card",
    "build_comparison": "rewardlab.audit.compare",
    "compare_runs": "rewardlab.audit.compare",
    "DISCLOSURE_FIELDS": "rewardlab.audit.disclosure",
    "read_disclosure": "rewardlab.audit.disclosure",
    "AuditRun": "rewardlab.audit.run",
    "run_audit": "rewardlab.audit.run",
    "AuditSettings": "rewardlab.audit.settings",
})

__all__ = ["DISCLOSURE_FIELDS", "AuditRun", "AuditSettings", "build_card", "build_comparison", "compare_runs",
           "read_disclosure", "run_audit"]
