"""Golden outputs per judge: every recorded output still gets its recorded verdict at the judge's current
version. A judge whose behaviour changes without a new version in JUDGE_VERSIONS fails here (its scores
would otherwise be ranked next to scores of the old behaviour); see training/tests/golden_judges.py."""

import json

import pytest

from training.judges import JUDGE_VERSIONS
from training.tests.golden_judges import GOLDEN, record, verdict, verdicts_digest

GOLDEN_JUDGES = json.loads(GOLDEN.read_text(encoding="utf-8"))["judges"]


def test_every_deterministic_judge_has_golden_outputs():
    assert set(GOLDEN_JUDGES) == set(JUDGE_VERSIONS)
    assert all(len(entry["cases"]) >= 15 for entry in GOLDEN_JUDGES.values())


@pytest.mark.parametrize("judge", sorted(JUDGE_VERSIONS))
def test_the_golden_verdicts_were_recorded_at_the_judges_current_version(judge):
    entry = GOLDEN_JUDGES[judge]
    assert entry["version"] == JUDGE_VERSIONS[judge], (
        f"{judge} is at version {JUDGE_VERSIONS[judge]} but its golden outputs are of version {entry['version']}: "
        "run `python -m training.tests.golden_judges --record`")
    assert entry["history"][entry["version"]] == verdicts_digest(entry["cases"]), (
        f"the recorded verdicts of {judge}@{entry['version']} were edited by hand")


@pytest.mark.parametrize("judge", sorted(JUDGE_VERSIONS))
def test_each_judge_still_gives_its_golden_verdicts(judge):
    changed = [(case["output"], case.get("expected"), case["verdict"], verdict(judge, case))
               for case in GOLDEN_JUDGES[judge]["cases"] if verdict(judge, case) != case["verdict"]]
    assert not changed, (f"{judge}@{JUDGE_VERSIONS[judge]} changed its verdict on {len(changed)} golden output(s) "
                         f"without a new version (output, expected, recorded, now): {changed[:5]}")


def test_recording_refuses_new_verdicts_under_an_old_version(tmp_path, monkeypatch):
    golden = json.loads(GOLDEN.read_text(encoding="utf-8"))
    golden["judges"]["format"]["cases"][0]["output"] = "not the format at all"
    path = tmp_path / "judges.json"
    path.write_text(json.dumps(golden))
    with pytest.raises(SystemExit, match="bump JUDGE_VERSIONS"):
        record(path)
    monkeypatch.setitem(JUDGE_VERSIONS, "format", "2")
    assert record(path) == ["format@2"]
    assert set(json.loads(path.read_text())["judges"]["format"]["history"]) == {"1", "2"}
