"""The layering rules of SPEC §1, checked on the source: `training/` imports no Django (it runs in
the notebook and in fresh trainer processes), `apps/core` imports no other app (every app imports it),
and no app imports the orchestration above them (`apps/pipeline`)."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
WEB_FRAMEWORK = ("django", "rest_framework", "drf_spectacular", "celery", "apps", "tunixrt")


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def _modules(folder: str, *, include_tests: bool):
    for path in sorted((ROOT / folder).rglob("*.py")):
        if include_tests or "tests" not in path.relative_to(ROOT).parts:
            yield path


def _offenders(folder: str, forbidden, *, include_tests: bool) -> dict:
    found = {}
    for path in _modules(folder, include_tests=include_tests):
        bad = sorted(name for name in _imports(path) if forbidden(name))
        if bad:
            found[str(path.relative_to(ROOT))] = bad
    return found


def test_training_imports_no_django():
    assert _offenders("training", lambda name: name.split(".")[0] in WEB_FRAMEWORK, include_tests=True) == {}


def test_core_imports_no_other_app():
    def other_app(name):
        parts = name.split(".")
        return parts[0] == "apps" and len(parts) > 1 and parts[1] != "core"

    assert _offenders("apps/core", other_app, include_tests=False) == {}


def test_no_app_imports_the_pipeline():
    for app in sorted(p.name for p in (ROOT / "apps").iterdir() if p.is_dir() and p.name != "pipeline"):
        if (ROOT / "apps" / app / "__init__.py").exists():
            assert _offenders(f"apps/{app}", lambda name: name.startswith("apps.pipeline"),
                              include_tests=True) == {}


# The apps stack strictly (SPEC §1): each imports only those listed before it. Sweeps score trials on
# evaluation metrics, so they sit above evaluations; the registry promotes a sweep's best trial.
APP_ORDER = ["core", "traces", "datasets", "runs", "evaluations", "sweeps", "registry", "serving", "pipeline"]


def test_every_app_imports_only_the_apps_below_it():
    present = sorted(p.name for p in (ROOT / "apps").iterdir() if (p / "__init__.py").exists())
    assert sorted(APP_ORDER) == present, "a new app needs its place in APP_ORDER"
    upward = {}
    for level, app in enumerate(APP_ORDER):
        above = tuple(f"apps.{higher}" for higher in APP_ORDER[level + 1:])
        found = _offenders(f"apps/{app}", lambda name, above=above: name.startswith(above), include_tests=False)
        upward.update(found)
    assert upward == {}
