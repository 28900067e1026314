"""The one renderer (SPEC §3): every training path, export and the notebook use these strings.

A trace renders to a Gemma chat prompt and a completion in the hackathon's output format. The
trainer masks the prompt and learns the completion, including the closing end-of-turn marker, so
models learn to stop.
"""

from __future__ import annotations

import uuid

START_OF_TURN = "<start_of_turn>"
END_OF_TURN = "<end_of_turn>"
REASONING_OPEN, REASONING_CLOSE = "<reasoning>", "</reasoning>"
ANSWER_OPEN, ANSWER_CLOSE = "<answer>", "</answer>"
TEMPLATE_NAME = "gemma_reasoning"
TEMPLATE_VERSION = "1"
# tunix_sft_answer_only is the show-your-work ablation: the same traces with an empty reasoning
# section, so a model trained on it can be compared with one trained on the full traces.
# grpo_prompt is what a GRPO run samples from: the raw prompt and the answer its judges compare against.
EXPORT_FORMATS = ("trace", "tunix_sft", "training_example", "messages", "tunix_sft_answer_only", "grpo_prompt")

# Stable namespace so a training_example id is a pure function of its source trace id.
_EXAMPLE_NAMESPACE = uuid.UUID("6f6b1f0e-6a8c-4c1e-9a43-2b1f3c0d7e55")


def render_prompt(prompt: str) -> str:
    return f"{START_OF_TURN}user\n{prompt}{END_OF_TURN}\n{START_OF_TURN}model\n"


def render_conversation(messages: list[dict]) -> str:
    """A chat (`role`: system | user | assistant, `content`) as the prompt the models are trained on.

    One user message renders exactly as `render_prompt`; system text goes in front of the first user
    turn (Gemma's template has no system role), earlier assistant turns become model turns, and the
    prompt ends with an open model turn. The last message must be the user's."""
    system = "\n\n".join(m["content"] for m in messages if m["role"] == "system")
    turns = [m for m in messages if m["role"] != "system"]
    if not turns or turns[-1]["role"] != "user":
        raise ValueError("The last message (after any system messages) must be the user's.")
    parts = []
    for index, message in enumerate(turns):
        content = message["content"]
        if index == 0 and system and message["role"] == "user":
            content = f"{system}\n\n{content}"
        role = "user" if message["role"] == "user" else "model"
        parts.append(f"{START_OF_TURN}{role}\n{content}{END_OF_TURN}\n")
    return "".join(parts) + f"{START_OF_TURN}model\n"


def render_response(steps: list[dict], final_answer: str) -> str:
    """The target output without the chat markers: `<reasoning>…</reasoning><answer>…</answer>`."""
    step_lines = "\n".join(step["content"] for step in steps)
    return f"{REASONING_OPEN}{step_lines}{REASONING_CLOSE}{ANSWER_OPEN}{final_answer}{ANSWER_CLOSE}"


def render_completion(steps: list[dict], final_answer: str) -> str:
    return render_response(steps, final_answer) + END_OF_TURN


def render_tunix_sft(trace: dict, trace_id: str, *, show_work: bool = True) -> dict:
    prompt = render_prompt(trace["prompt"])
    steps = trace["steps"] if show_work else []
    completion = render_completion(steps, trace["final_answer"])
    return {
        "id": trace_id,
        "prompt": prompt,
        "completion": completion,
        "text": prompt + completion,
        "final_answer": trace["final_answer"],
        "metadata": trace.get("meta") or {},
    }


def render_tunix_sft_answer_only(trace: dict, trace_id: str) -> dict:
    """tunix_sft with `<reasoning></reasoning>` left empty: the answer without the work."""
    return render_tunix_sft(trace, trace_id, show_work=False)


def render_grpo_prompt(trace: dict, trace_id: str) -> dict:
    """The trace's prompt as raw user text (GRPO renders it) and its final answer as the expected one."""
    return {"id": str(trace_id), "prompt": trace["prompt"], "expected_answer": trace["final_answer"],
            "metadata": trace.get("meta") or {}}


def render_training_example(trace: dict, trace_id: str) -> dict:
    return {
        "id": str(uuid.uuid5(_EXAMPLE_NAMESPACE, str(trace_id))),
        "prompt": trace["prompt"],
        "response": render_response(trace["steps"], trace["final_answer"]),
        "metadata": {"source_trace_id": str(trace_id)},
    }


def render_messages(trace: dict, trace_id: str) -> dict:
    return {
        "messages": [
            {"role": "user", "content": trace["prompt"]},
            {"role": "assistant", "content": render_response(trace["steps"], trace["final_answer"])},
        ]
    }


def render_trace(trace: dict, trace_id: str) -> dict:
    return {"id": str(trace_id), **trace}


RENDERERS = {
    "trace": render_trace,
    "tunix_sft": render_tunix_sft,
    "training_example": render_training_example,
    "messages": render_messages,
    "tunix_sft_answer_only": render_tunix_sft_answer_only,
    "grpo_prompt": render_grpo_prompt,
}


def render_export_line(fmt: str, trace: dict, trace_id: str) -> dict:
    """One export line as a dict; `fmt` must be one of EXPORT_FORMATS."""
    return RENDERERS[fmt](trace, trace_id)
