"""Building blocks shared by every generator: tasks, templates, categories, eval ownership.

A *template* turns a seeded `random.Random` into one `Task` (prompt, steps, bare answer). A
*category* groups a few templates. Generators pick templates and wrap tasks into traces or eval
items; they never touch the global `random` module.

Eval ownership: a prompt belongs to the eval set or to training, decided by a stable hash of the
prompt text itself (so two templates that happen to write the same sentence agree on its owner).
eval-v1 only emits eval-owned prompts and dev-reasoning-v1 skips them; golden-v1 (hand-written,
checked never to be eval-owned) and High Card Duel (a finite prompt space that eval-v1 excludes
outright) cannot collide either. So no eval prompt appears in training output for any seed.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from fractions import Fraction

from training.trace_schema import DEFAULT_TRACE_VERSION, canonical_json

OWNERSHIP_SCHEME = {"scheme": "sha256(prompt)", "version": "1", "eval_share": "1/8"}
_OWNERSHIP_SALT = b"tunix-rt eval ownership v1\n"
_EVAL_SHARE = Fraction(1, 8)
MAX_SEED = 2**63 - 1


def is_eval_owned(prompt: str) -> bool:
    """True when `prompt` is reserved for eval sets; training generators must never emit it."""
    digest = hashlib.sha256(_OWNERSHIP_SALT + prompt.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % _EVAL_SHARE.denominator < _EVAL_SHARE.numerator


@dataclass(frozen=True)
class Task:
    prompt: str
    steps: tuple[tuple[str, str], ...]  # (step type, content), in order
    answer: str
    answer_type: str  # integer | fraction | yes_no | text | name | choice


@dataclass(frozen=True)
class Template:
    key: str  # "<category>.<template>", stable: it lands in trace meta
    difficulty: str  # easy | medium (in distribution); held-out templates are always "hard"
    build: Callable[[random.Random, bool], Task]  # (rng, large_numbers) -> Task
    held_out: bool = False  # eval-only wording, never used for training
    scalable: bool = True  # False when `large_numbers` changes nothing (no numbers to grow)


@dataclass(frozen=True)
class Category:
    name: str
    task_type: str  # word_problem | synthetic
    templates: tuple[Template, ...]
    train_templates: tuple[Template, ...] = field(init=False)
    held_out_templates: tuple[Template, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "train_templates", tuple(t for t in self.templates if not t.held_out))
        object.__setattr__(self, "held_out_templates", tuple(t for t in self.templates if t.held_out))


def pick(rng: random.Random, large: bool, small: tuple[int, int], big: tuple[int, int]) -> int:
    """A random int from the small (in-distribution) or the big (out-of-distribution) range."""
    low, high = big if large else small
    return rng.randint(low, high)


def templates_for(category: str, train: list[tuple[Callable, str]], held_out: list[Callable],
                  fixed_size: tuple[Callable, ...] = ()) -> tuple[Template, ...]:
    """Templates keyed `<category>.<function name without the category prefix>`.

    `fixed_size` lists builders with no numbers to grow, so they are never used as "large" items.
    """
    def key(build: Callable) -> str:
        return f"{category}.{build.__name__.removeprefix(category + '_')}"

    templates = [Template(key(build), difficulty, build, scalable=build not in fixed_size)
                 for build, difficulty in train]
    return tuple(templates + [Template(key(build), "hard", build, held_out=True) for build in held_out])


def task(prompt: str, steps: Iterable[tuple[str, str]], answer: object, answer_type: str = "integer") -> Task:
    return Task(prompt, tuple(steps), str(answer), answer_type)


@dataclass(frozen=True)
class GeneratedSet:
    name: str  # the generator key, e.g. "dev-reasoning-v1"
    items: list[dict]  # traces (SPEC §2.1) or, for eval sets, eval items
    manifest: dict


def items_sha256(items: list[dict]) -> str:
    return hashlib.sha256(canonical_json(items).encode("utf-8")).hexdigest()


def set_manifest(*, name: str, version: str, generator: str, generator_version: str, kind: str, seed: int | None,
                 items: list[dict], **details) -> dict:
    """The fields every generated set's manifest carries (count and hash derived from the items), plus
    the generator's own `details`."""
    return {"name": name, "version": version, "generator": generator, "generator_version": generator_version,
            "kind": kind, "seed": seed, "count": len(items), **details, "items_sha256": items_sha256(items)}


def verify(answer: int, op: str, operand: int, result: int) -> tuple[str, str]:
    """The verification step: start from the answer and undo the last operation."""
    return ("verify", f"Check: {answer} {op} {operand} = {result}")


def check_int(name: str, value: object, low: int, high: int) -> int:
    """`value` as an int within [low, high], else a ValueError that names the argument."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{name} must be an integer between {low} and {high} (got {value!r}).")
    return value


def allocate(total: int, names: list[str], rng: random.Random) -> dict[str, int]:
    """Split `total` as evenly as possible over `names`; the rng picks who gets the remainder."""
    base, remainder = divmod(total, len(names))
    lucky = set(rng.sample(names, remainder))
    return {name: base + (name in lucky) for name in names}


def reasoning_synthetic_split(total: int) -> tuple[int, int]:
    """70 % reasoning traces, 30 % structured synthetic tasks (rounded half up)."""
    reasoning = (total * 7 + 5) // 10
    return reasoning, total - reasoning


def shuffled_schedule(quotas: dict[str, int], rng: random.Random) -> list[str]:
    schedule = [name for name, n in quotas.items() for _ in range(n)]
    rng.shuffle(schedule)
    return schedule


def trace_from_task(task_: Task, template: Template, category: Category, *, generator: str,
                    generator_version: str, seed: int) -> dict:
    return {
        "trace_version": DEFAULT_TRACE_VERSION,
        "prompt": task_.prompt,
        "final_answer": task_.answer,
        "steps": [{"i": i, "type": kind, "content": text} for i, (kind, text) in enumerate(task_.steps)],
        "meta": {
            "source": f"generator:{generator}",
            "generator": generator,
            "generator_version": generator_version,
            "seed": seed,
            "category": category.name,
            "task_type": category.task_type,
            "template": template.key,
            "difficulty": template.difficulty,
            "answer_type": task_.answer_type,
            "tags": [category.task_type, category.name, task_.answer_type],
        },
    }


def count_by(items: Iterable[dict], key: Callable[[dict], str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for item in items:
        counts[key(item)] = counts.get(key(item), 0) + 1
    return dict(sorted(counts.items()))
