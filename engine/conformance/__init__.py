"""Conformance against golden cases made with the original ToonCrafter code.

`python -m engine.conformance DIR` runs every case of a case folder (format of shared/reference/tiny_a)
and prints, per case, the maximum absolute difference and pass/fail; `--manifest FILE` checks the
full-size model's state_dict keys and shapes against a checkpoint manifest. Checks are plug-ins:
each `checks_*.py` module in this package exposes `CASES: dict[str, Callable[[CaseContext], dict]]`.
"""

from .runner import CaseContext, CaseFolder, CaseResult, discover_checks, run_folder

__all__ = ["CaseContext", "CaseFolder", "CaseResult", "discover_checks", "run_folder"]
