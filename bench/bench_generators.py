"""Generator and judge throughput: traces (or judged outputs) per second, best of a few runs.

`python -m bench.bench_generators` prints one JSON object. Pure Python, no Django, no JAX.
"""

import json
import statistics
import time

from training.generators import generate
from training.judges import answer_exact, format_ok, reasoning_checks
from training.render import render_completion

COUNT = 20_000
REPEATS = 3


def _best_seconds(run) -> float:
    timings = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        run()
        timings.append(time.perf_counter() - started)
    return min(timings)


def _generator_rates() -> dict:
    dev = _best_seconds(lambda: generate("dev-reasoning-v1", count=COUNT, seed=1))
    duel = _best_seconds(lambda: generate("high-card-duel", count=COUNT, seed=1))
    eval_set = _best_seconds(lambda: generate("eval-v1"))
    return {
        "dev_reasoning_traces_per_s": round(COUNT / dev),
        "dev_reasoning_20k_s": round(dev, 3),
        "high_card_duel_traces_per_s": round(COUNT / duel),
        "eval_v1_build_s": round(eval_set, 3),
    }


def _judge_rates() -> dict:
    traces = generate("dev-reasoning-v1", count=COUNT, seed=2).items
    outputs = [(render_completion(t["steps"], t["final_answer"]), t["final_answer"]) for t in traces]

    def judge_all():
        for output, expected in outputs:
            format_ok(output)
            answer_exact(output, expected)
            reasoning_checks(output)

    seconds = _best_seconds(judge_all)
    return {
        "judged_outputs_per_s": round(len(outputs) / seconds),
        "mean_output_chars": round(statistics.mean(len(o) for o, _ in outputs), 1),
    }


def main() -> None:
    result = {"count": COUNT, "repeats": REPEATS, **_generator_rates(), **_judge_rates()}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
