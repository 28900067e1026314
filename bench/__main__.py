"""Run the benchmarks, each in its own process; print one table and write one JSON document.

    python -m bench                     # every bench/bench_*.py
    python -m bench api datasets        # the named ones
    python -m bench --quick             # shrunken sizes: checks that each still runs (make test does this)

Each runs in a fresh interpreter so memory and JIT-compilation measurements do not leak between them.
The document (var/bench/results.json, or --out) holds the machine, every figure with its target and the
comparison measured in the same run, the shortfalls, and each benchmark's full details.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def available() -> list[str]:
    return sorted(p.stem.removeprefix("bench_") for p in HERE.glob("bench_*.py"))


def run_one(name: str, quick: bool) -> dict:
    env = {**os.environ, "QUICK": "1" if quick else "0"}
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", f"bench.bench_{name}"], cwd=ROOT, env=env,
                          capture_output=True, text=True)
    elapsed = round(time.perf_counter() - started, 1)
    if proc.returncode != 0:
        return {"error": f"exit {proc.returncode}", "stderr_tail": proc.stderr[-3000:], "wall_s": elapsed}
    try:
        result = json.loads(proc.stdout)
    except ValueError:
        return {"error": "output was not JSON", "stdout_tail": proc.stdout[-3000:], "wall_s": elapsed}
    if not isinstance(result, dict) or not result.get("figures"):
        return {"error": "no figures reported", "stdout_tail": proc.stdout[-3000:], "wall_s": elapsed}
    result["wall_s"] = elapsed
    return result


def machine() -> dict:
    memory_kb = next((int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                      if line.startswith("MemTotal:")), 0) if Path("/proc/meminfo").exists() else 0
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() else ""
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    return {"cores": os.cpu_count(), "memory_gib": round(memory_kb / 2**20, 1), "cpu": cpu,
            "python": platform.python_version(), "commit": commit.stdout.strip() or None,
            "load_average_1m_at_start": round(os.getloadavg()[0], 2)}


def _number(value) -> str:
    return "—" if value is None else f"{value:,.4g}" if abs(value) < 1e4 else f"{value:,.0f}"


def table(figures: list[dict]) -> str:
    """Issue, figure, value (range), target, verdict, comparison: one row per figure."""
    rows = [("issue", "figure", "value", "target", "", "compared with")]
    for f in figures:
        value = f"{_number(f['value'])} {f['unit']}"
        if "range" in f:
            value += f" ({_number(f['range'][0])}–{_number(f['range'][1])}, n={len(f['samples'])})"
        verdict = {True: "met", False: "SHORT", None: ""}[f.get("met")] if "target" in f else ""
        comparison = f.get("comparison")
        compared = (f"{comparison['what']}: {_number(comparison['value'])} {comparison['unit']}"
                    + (" (quoted)" if comparison.get("quoted") else "")) if comparison else ""
        rows.append((f["issue"], f["name"], value, f.get("target", ""), verdict, compared))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(r[:5], widths, strict=True)) + "  " + r[5]
                     for r in rows)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help=f"benchmarks to run (default: all of {', '.join(available())})")
    parser.add_argument("--quick", action="store_true", help="shrunken sizes; targets are not judged")
    parser.add_argument("--out", type=Path, default=ROOT / "var" / "bench" / "results.json")
    args = parser.parse_args(argv)
    unknown = set(args.names) - set(available())
    if unknown:
        parser.error(f"unknown benchmark(s) {sorted(unknown)}; known: {available()}")
    document = {"date": datetime.now(UTC).isoformat(timespec="seconds"), "quick": args.quick, "machine": machine()}
    results = {}
    for name in args.names or available():
        print(f"bench: running {name} …", file=sys.stderr, flush=True)
        results[name] = run_one(name, args.quick)
    figures = [f for r in results.values() for f in r.get("figures", [])]
    document |= {
        "figures": figures,
        "shortfalls": [f"{f['issue']}: {f['name']} = {_number(f['value'])} {f['unit']} (target {f['target']})"
                       for f in figures if f.get("met") is False],
        "errors": {name: r for name, r in results.items() if "error" in r},
        "results": results,
    }
    document["machine"]["load_average_1m_at_end"] = round(os.getloadavg()[0], 2)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(document, indent=2) + "\n")
    print(table(figures))
    for line in document["shortfalls"]:
        print(f"short of target: {line}")
    for name, error in document["errors"].items():
        print(f"FAILED: {name}: {error['error']}\n{error.get('stderr_tail') or error.get('stdout_tail', '')}")
    m = document["machine"]
    print(f"\n{m['cores']} cores, {m['memory_gib']} GiB, load {m['load_average_1m_at_start']} → "
          f"{m['load_average_1m_at_end']}{' (quick mode: targets not judged)' if args.quick else ''}; "
          f"JSON: {args.out}")
    return 1 if document["errors"] else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
