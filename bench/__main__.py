"""Run every benchmark in its own process and print one JSON document.

`python -m bench` runs all `bench/bench_*.py`; `python -m bench api datasets` runs the named ones.
Each runs in a fresh interpreter so memory and JIT-compilation measurements do not leak between them.
"""

import json
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def run_one(name: str) -> dict:
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", f"bench.bench_{name}"], cwd=HERE.parent,
                          capture_output=True, text=True)
    elapsed = round(time.perf_counter() - started, 1)
    if proc.returncode != 0:
        return {"error": f"exit {proc.returncode}", "stderr_tail": proc.stderr[-3000:], "wall_s": elapsed}
    try:
        result = json.loads(proc.stdout)
    except ValueError:
        return {"error": "output was not JSON", "stdout_tail": proc.stdout[-3000:], "wall_s": elapsed}
    result["wall_s"] = elapsed
    return result


def main(argv: list[str]) -> int:
    names = argv or sorted(p.stem.removeprefix("bench_") for p in HERE.glob("bench_*.py"))
    results = {}
    for name in names:
        print(f"bench: running {name} …", file=sys.stderr, flush=True)
        results[name] = run_one(name)
    document = json.dumps({"results": results}, indent=2)
    out = HERE.parent / "var" / "bench" / "results.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(document + "\n")
    print(document)
    return 1 if any("error" in r for r in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
