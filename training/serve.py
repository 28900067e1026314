"""The model host: one process that keeps models loaded and answers generation requests (`python -m
training serve`), so the web process that talks OpenAI's protocol never imports JAX.

Requests and replies are one JSON object per line (stdin → stdout), matched by `id`:

    {"id", "folder", "backend", "prompt", "n", "max_tokens", "temperature", "top_p", "seed", "models_dir"}
    → {"id", "ok": true, "choices": [{"text", "tokens", "stopped"}], "prompt_tokens", "batch_size",
       "generate_seconds", "load_seconds"}
    → {"id", "ok": false, "error": code, "message"}          (context_length_exceeded, bad_request, …)
    {"id", "op": "stats"} → {"id", "ok": true, "stats": {...}}

Loaded builtin models stay in a cache bounded by a memory budget (their parameters' bytes), least
recently used out first. Greedy single-completion requests that wait together for the same model and
settings are decoded as one batch: batching changes no greedy output (each row is masked alone), so a
caller gets the same answer whoever else is asking. A sampled request is decoded alone, so its seed alone
decides its completions. Tunix versions go through Tunix's sampler (training.backends.tunix_generate,
which keeps one model loaded itself).
"""

from __future__ import annotations

import json
import os
import queue
import sys
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

from training.run_files import RUN_CONFIG_FILE, read_json
from training.run_files import context_length as run_context_length

MAX_BATCH = 8
BATCH_WINDOW_S = 0.025  # how long the first request of a batch waits for company
# Padded batch shapes: a lone request runs alone, any batch fills MAX_BATCH rows. Each new shape is a
# compilation (a second or more on a CPU), which costs more than decoding a few padding rows.
_BATCH_SIZES = (1, MAX_BATCH)


class RequestError(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


def params_bytes(params) -> int:
    import jax

    return int(sum(leaf.nbytes for leaf in jax.tree_util.tree_leaves(params) if hasattr(leaf, "nbytes")))


@dataclass
class ModelCache:
    """Builtin models by folder, evicted least recently used first when the budget is passed. A model
    larger than the whole budget is still served, alone."""

    budget_bytes: int
    models: OrderedDict = field(default_factory=OrderedDict)
    loads: int = 0
    evictions: int = 0

    def get(self, folder: str):
        if folder in self.models:
            self.models.move_to_end(folder)
            return self.models[folder][0], 0.0
        from training.generate import load_model

        began = time.perf_counter()
        loaded = load_model(folder)
        size = params_bytes(loaded.params)
        while self.models and self.held_bytes() + size > self.budget_bytes:
            self.models.popitem(last=False)
            self.evictions += 1
        self.models[folder] = (loaded, size)
        self.loads += 1
        return loaded, time.perf_counter() - began

    def held_bytes(self) -> int:
        return sum(size for _, size in self.models.values())


def context_length(loaded) -> int:
    """What the model was trained on: longer prompts or completions reach positions it never saw."""
    return run_context_length(loaded.run_config)


def _check_lengths(loaded, prompt: str, max_tokens: int) -> int:
    prompt_tokens = len(loaded.tokenizer.encode(prompt))
    limit = context_length(loaded)
    if prompt_tokens > limit:
        raise RequestError("context_length_exceeded",
                           f"The prompt is {prompt_tokens} tokens; this model's context is {limit}.")
    if max_tokens > limit:
        raise RequestError("context_length_exceeded",
                           f"max_tokens is {max_tokens}; this model's context is {limit} tokens.")
    return prompt_tokens


def _padded(count: int) -> int:
    return next((size for size in _BATCH_SIZES if size >= count), count)


class Host:
    def __init__(self, budget_bytes: int, out=None):
        self.cache = ModelCache(budget_bytes)
        self.out = out or sys.stdout
        self.requests: queue.Queue = queue.Queue()
        self.batches: dict[int, int] = {}  # batch size -> how many were decoded
        self.served = 0

    # --- the loop -----------------------------------------------------------------------------

    def read(self, stream) -> None:
        for line in stream:
            if line.strip():
                self.requests.put(line)
        self.requests.put(None)

    def run(self, stream) -> None:
        threading.Thread(target=self.read, args=(stream,), daemon=True).start()
        while True:
            pending = self._gather()
            if pending is None:
                return
            for group in self._groups(pending):
                self._serve(group)

    def _gather(self) -> list[dict] | None:
        """The next request, and the ones that arrive within the batch window (or while the last batch
        was decoding)."""
        first = self.requests.get()
        if first is None:
            return None
        lines, deadline = [first], time.monotonic() + BATCH_WINDOW_S
        while len(lines) < 4 * MAX_BATCH:
            try:
                line = self.requests.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            if line is None:
                self.requests.put(None)  # let the loop see the end after this round
                break
            lines.append(line)
        return [self._parse(line) for line in lines]

    def _parse(self, line: str) -> dict:
        try:
            request = json.loads(line)
        except ValueError:
            request = None
        return request if isinstance(request, dict) else {"id": None, "op": "invalid"}

    @staticmethod
    def _batch_key(request: dict):
        if request.get("op") or request.get("backend") != "builtin":
            return None
        if request.get("n", 1) != 1 or request.get("temperature", 0.0) > 0:
            return None
        return request["folder"], request["max_tokens"], request.get("top_p", 1.0)

    def _groups(self, requests: list[dict]) -> list[list[dict]]:
        groups: dict = {}
        ordered: list[list[dict]] = []
        for request in requests:
            key = self._batch_key(request)
            if key is not None and key in groups and len(groups[key]) < MAX_BATCH:
                groups[key].append(request)
                continue
            group = [request]
            ordered.append(group)
            if key is not None:
                groups[key] = group
        return ordered

    # --- serving --------------------------------------------------------------------------------

    def _serve(self, group: list[dict]) -> None:
        try:
            for request, reply in zip(group, self._answer(group), strict=True):
                self._write({"id": request.get("id"), **reply})
        except RequestError as exc:
            for request in group:
                self._write({"id": request.get("id"), "ok": False, "error": exc.code, "message": str(exc)})
        except Exception as exc:  # noqa: BLE001 - one bad model must not take the host down for the others
            for request in group:
                self._write({"id": request.get("id"), "ok": False, "error": "generation_failed",
                             "message": f"{type(exc).__name__}: {exc}"[:500]})

    def _answer(self, group: list[dict]) -> list[dict]:
        first = group[0]
        if first.get("op") == "stats":
            return [{"ok": True, "stats": self.stats()}]
        if first.get("op") or not isinstance(first.get("folder"), str):
            raise RequestError("bad_request", "The host could not read this request.")
        if first.get("backend") == "tunix":
            return [self._tunix(first)]
        return self._builtin(group)

    def _builtin(self, group: list[dict]) -> list[dict]:
        from training.generate import generate_batch

        first = group[0]
        loaded, load_seconds = self.cache.get(first["folder"])
        replies: list[dict | None] = [None] * len(group)
        live = []
        for index, request in enumerate(group):  # a too-long prompt fails alone, not its batch
            try:
                live.append((index, _check_lengths(loaded, request["prompt"], request["max_tokens"])))
            except RequestError as exc:
                replies[index] = {"ok": False, "error": exc.code, "message": str(exc)}
        if not live:
            return replies
        n = int(first.get("n", 1))
        prompts = [group[i]["prompt"] for i, _ in live] if len(group) > 1 else [first["prompt"]] * n
        began = time.perf_counter()
        generations = generate_batch(loaded, prompts, int(first["max_tokens"]), float(first.get("temperature", 0.0)),
                                     int(first.get("seed", 0)), _padded(len(prompts)),
                                     top_p=float(first.get("top_p", 1.0)))
        seconds = time.perf_counter() - began
        self._count(len(prompts), len(group))
        choices = [[g] for g in generations] if len(group) > 1 else [generations]
        for (index, prompt_tokens), chosen in zip(live, choices, strict=True):
            replies[index] = {"ok": True, "prompt_tokens": prompt_tokens, "batch_size": len(prompts),
                              "generate_seconds": seconds, "load_seconds": load_seconds,
                              "choices": [{"text": g.text, "tokens": len(g.token_ids), "stopped": g.stopped}
                                          for g in chosen]}
        return replies

    def _tunix(self, request: dict) -> dict:
        from training.backends import tunix_generate
        from training.base_weights import MODELS_DIR_ENV

        if request.get("models_dir"):  # where the server finds base weights by name (it may change in tests)
            os.environ[MODELS_DIR_ENV] = request["models_dir"]
        n = int(request.get("n", 1))
        prompt_tokens = len(tunix_generate.loaded_tokenizer(request["folder"]).encode(request["prompt"]))
        limit = run_context_length(read_json(Path(request["folder"]) / RUN_CONFIG_FILE))
        if prompt_tokens > limit:
            raise RequestError("context_length_exceeded",
                               f"The prompt is {prompt_tokens} tokens; this model's context is {limit}.")
        began = time.perf_counter()
        generations = tunix_generate.generate_details(request["folder"], [request["prompt"]] * n,
                                                      int(request["max_tokens"]),
                                                      float(request.get("temperature", 0.0)),
                                                      int(request.get("seed", 0)))
        self._count(n, 1)
        return {"ok": True, "prompt_tokens": prompt_tokens, "batch_size": n, "load_seconds": None,
                "generate_seconds": time.perf_counter() - began,
                "choices": [{"text": g.text, "tokens": len(g.token_ids), "stopped": g.stopped} for g in generations]}

    def _count(self, rows: int, requests: int) -> None:
        self.batches[rows] = self.batches.get(rows, 0) + 1
        self.served += requests

    def stats(self) -> dict:
        return {"loads": self.cache.loads, "evictions": self.cache.evictions, "loaded": list(self.cache.models),
                "held_bytes": self.cache.held_bytes(), "budget_bytes": self.cache.budget_bytes,
                "served": self.served, "batches": {str(k): v for k, v in sorted(self.batches.items())}}

    def _write(self, reply: dict) -> None:
        self.out.write(json.dumps(reply, sort_keys=True) + "\n")
        self.out.flush()


def serve(budget_mb: int, stream=None) -> int:
    Host(budget_mb * 1024 * 1024).run(stream or sys.stdin)
    return 0
