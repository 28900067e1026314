"""Generator and judge throughput: traces (or judged outputs) per second, median and range of a few runs.

`python -m bench.bench_generators` prints one JSON object. Pure Python, no Django, no JAX. No issue
sets a target here; the figures show that seeding and judging never bound a demo or an evaluation.
"""

import json
import statistics

from bench.report import figure, quick, repeat, timed
from training.generators import GENERATORS, generate
from training.judges import answer_exact, format_ok, reasoning_checks
from training.render import render_completion

COUNT = quick(20_000, 500)
REPEATS = quick(3, 1)
ISSUE = "#3 datasets"


def _rate(name: str) -> dict:
    rates = repeat(REPEATS, lambda: COUNT / timed(lambda: generate(name, count=COUNT, seed=1)))
    return figure(ISSUE, f"{name} generator", rates, "traces/s")


def _judge_rate() -> dict:
    traces = generate("dev-reasoning-v1", count=COUNT, seed=2).items
    outputs = [(render_completion(t["steps"], t["final_answer"]), t["final_answer"]) for t in traces]

    def judge_all():
        for output, expected in outputs:
            format_ok(output)
            answer_exact(output, expected)
            reasoning_checks(output)

    rates = repeat(REPEATS, lambda: len(outputs) / timed(judge_all))
    return figure("#11 evaluations", "judges (format, exact answer, reasoning checks)", rates, "outputs/s",
                  note=f"mean output {statistics.mean(len(o) for o, _ in outputs):.0f} characters")


def main() -> None:
    trace_generators = [name for name in ("dev-reasoning-v1", "dev-reasoning-v2", "high-card-duel")
                        if name in GENERATORS]
    figures = [_rate(name) for name in trace_generators]
    figures.append(figure(ISSUE, "eval-v1 built from its generator", repeat(REPEATS, lambda: timed(
        lambda: generate("eval-v1"))), "s"))
    figures.append(_judge_rate())
    print(json.dumps({"benchmark": "generators", "count": COUNT, "repeats": REPEATS, "figures": figures}))


if __name__ == "__main__":
    main()
