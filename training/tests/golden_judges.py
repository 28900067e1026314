"""The judges' golden outputs (training/tests/golden/judges.json): fixed model outputs and the verdict each
judge gives them at its current version.

`test_judges_golden.py` fails when a verdict changes while `JUDGE_VERSIONS` does not: scores of two
evaluations are compared only when their judge versions are equal, so a silent change would make
unlike numbers look comparable. Changing a judge on purpose means bumping its version and re-recording:

    .venv/bin/python -m training.tests.golden_judges --record

Recording refuses to rewrite the verdicts of a version that is already recorded (`history` keeps the
sha256 of each version's verdicts), so the only way to new verdicts is a new version.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

from training.judges import JUDGE_VERSIONS, answer_exact, format_ok, reasoning_checks

GOLDEN = Path(__file__).with_name("golden") / "judges.json"


def verdict(judge: str, case: dict):
    if judge == "answer_exact":
        return answer_exact(case["output"], case["expected"])
    if judge == "format":
        return format_ok(case["output"])
    checks = reasoning_checks(case["output"])
    return {"ok": checks["ok"], "claims": checks["claims"], "false": checks["false"]}


def verdicts_digest(cases: list[dict]) -> str:
    canonical = json.dumps([[case["output"], case.get("expected"), case["verdict"]] for case in cases],
                           sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def record(path: Path = GOLDEN) -> list[str]:
    """Re-judge every case; store the verdicts under each judge's current version. Returns what changed."""
    golden = json.loads(path.read_text(encoding="utf-8"))
    changed = []
    for judge, entry in golden["judges"].items():
        version = JUDGE_VERSIONS[judge]
        cases = [{**case, "verdict": verdict(judge, case)} for case in entry["cases"]]
        digest = verdicts_digest(cases)
        known = entry.setdefault("history", {}).get(version)
        if known is not None and known != digest:
            raise SystemExit(f"{judge}@{version} is recorded with other verdicts: bump JUDGE_VERSIONS['{judge}'] "
                             "in training/judges.py before recording new ones.")
        if known is None:
            changed.append(f"{judge}@{version}")
        entry.update(version=version, cases=cases)
        entry["history"][version] = digest
    path.write_text(json.dumps(golden, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return changed


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--record", action="store_true", help="re-judge the cases and store the verdicts")
    if parser.parse_args().record:
        print("recorded:", ", ".join(record()) or "nothing new")
