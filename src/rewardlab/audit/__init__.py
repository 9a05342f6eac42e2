"""`rewardlab audit`: a reward-model card a team reads before putting a reward model into RLHF.

`run_audit` measures (held-out accuracy and calibration, slices, bias probes, over-optimization risk, examples) into
one JSON record; `build_card` lays it out for the one report renderer (`rewardlab.report`), which writes a
self-contained HTML page and Markdown; `compare_runs` / `build_comparison` put two models side by side, paired.
This package sits at the pipeline's edge: it composes `evaluate`, `rewards`, `data` and the annotation statistics of
`collect`, and nothing in the core imports it.
"""

from rewardlab.audit.card import build_card
from rewardlab.audit.compare import build_comparison, compare_runs
from rewardlab.audit.disclosure import DISCLOSURE_FIELDS, read_disclosure
from rewardlab.audit.run import AuditRun, AuditSettings, run_audit

__all__ = ["DISCLOSURE_FIELDS", "AuditRun", "AuditSettings", "build_card", "build_comparison", "compare_runs",
           "read_disclosure", "run_audit"]
