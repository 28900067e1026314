"""Tokenizers: the protocol the data pipeline and generation rely on, and the builtin ones.

The byte tokenizer needs no download: ids 0..255 are raw UTF-8 bytes, followed by special ids. The
chat markers `<start_of_turn>` and `<end_of_turn>` are single tokens so a model learns to stop by
emitting exactly one id, and padding has its own id so it is never confused with end-of-sequence.

The SentencePiece one (training.spm_tokenizer) is learned per run: `run_tokenizer` trains it on a
fresh run's export and saves it as `tokenizer.model` in the run folder; a resumed run, generation and
evaluation load that file (`load_run_tokenizer`) and check it against the sha256 in run_config.json.
The config's `spm_letters` kind learns the same model and encodes with `spm-letters-v1` (quoted words
spelled one character per id); which encoding a run used is its run_config's `tokenizer` name.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Protocol, runtime_checkable

from training.render import END_OF_TURN, START_OF_TURN
from training.spm_tokenizer import SpmLettersTokenizer, SpmTokenizer, train_spm_model

TOKENIZER_FILE = "tokenizer.model"
# The learned encodings by the config kind that trains them, and by the name run_config.json records.
SPM_KINDS = {"spm": SpmTokenizer, "spm_letters": SpmLettersTokenizer}
SPM_ENCODINGS = {encoding.name: encoding for encoding in SPM_KINDS.values()}
_KIND_OF_ENCODING = {encoding.name: kind for kind, encoding in SPM_KINDS.items()}


@runtime_checkable
class Tokenizer(Protocol):
    pad_id: int
    eos_id: int
    end_of_turn_id: int
    vocab_size: int

    def encode(self, text: str) -> list[int]: ...

    def decode(self, ids: list[int]) -> str: ...


class ByteTokenizer:
    """UTF-8 bytes plus four special ids: pad, eos, <start_of_turn>, <end_of_turn>."""

    name = "byte-v1"
    pad_id = 256
    eos_id = 257
    start_of_turn_id = 258
    end_of_turn_id = 259
    vocab_size = 260

    _SPECIAL_TEXT = {START_OF_TURN: start_of_turn_id, END_OF_TURN: end_of_turn_id}
    _SPECIAL_SPLIT = re.compile("(" + "|".join(re.escape(s) for s in _SPECIAL_TEXT) + ")")

    def encode(self, text: str) -> list[int]:
        ids: list[int] = []
        for piece in self._SPECIAL_SPLIT.split(text):
            special = self._SPECIAL_TEXT.get(piece)
            if special is not None:
                ids.append(special)
            elif piece:
                ids.extend(piece.encode("utf-8"))
        return ids

    def decode(self, ids: list[int]) -> str:
        """Bytes back to text; chat markers come back as their text, pad and eos are dropped."""
        out: list[str] = []
        pending = bytearray()
        for token in ids:
            token = int(token)
            if 0 <= token < 256:
                pending.append(token)
                continue
            out.append(pending.decode("utf-8", errors="replace"))
            pending.clear()
            if token == self.start_of_turn_id:
                out.append(START_OF_TURN)
            elif token == self.end_of_turn_id:
                out.append(END_OF_TURN)
        out.append(pending.decode("utf-8", errors="replace"))
        return "".join(out)


def stop_ids(tokenizer: Tokenizer) -> tuple[int, ...]:
    """Ids that end a generated turn for any tokenizer: its end-of-turn and its eos."""
    return tuple(sorted({int(tokenizer.end_of_turn_id), int(tokenizer.eos_id)}))


def get_tokenizer(name: str) -> Tokenizer:
    if name == ByteTokenizer.name:
        return ByteTokenizer()
    raise ValueError(f"Unknown builtin tokenizer {name!r}; the only fixed builtin one is {ByteTokenizer.name!r}.")


def tokenizer_sha256(tokenizer: Tokenizer) -> str | None:
    """The hash of a learned tokenizer's model file; None for the fixed byte tokenizer."""
    return getattr(tokenizer, "sha256", None)


def tokenizer_kind(name: str) -> str:
    """The config kind (`byte`, `spm`, `spm_letters`) that trains the tokenizer called `name`."""
    return _KIND_OF_ENCODING.get(name, "byte")


def run_tokenizer(kind: str, vocab_size: int, rows: list[dict], out_dir: Path, resuming: bool) -> Tokenizer:
    """The tokenizer of a builtin run: bytes, or SentencePiece trained on `rows` (prompts and
    completions) when the run starts and read back from the run folder when it resumes."""
    if kind == "byte":
        return ByteTokenizer()
    encoding = SPM_KINDS[kind]
    path = Path(out_dir) / TOKENIZER_FILE
    if resuming and path.exists():
        return encoding(path.read_bytes())
    model = train_spm_model((text for row in rows for text in (row["prompt"], row["completion"])), vocab_size)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(model)
    os.replace(tmp, path)  # a run killed mid-write never leaves half a tokenizer behind
    return encoding(model)


def load_run_tokenizer(out_dir: str | Path, run_config: dict) -> Tokenizer:
    """The tokenizer a builtin run folder was trained with; a SentencePiece file whose sha256 is not
    the one run_config.json recorded is refused (the checkpoint's ids would mean other pieces)."""
    name = run_config["model"]["tokenizer"]
    if name not in SPM_ENCODINGS:
        return get_tokenizer(name)
    path = Path(out_dir) / TOKENIZER_FILE
    if not path.exists():
        raise FileNotFoundError(f"{out_dir} was trained with a learned tokenizer but {TOKENIZER_FILE} is missing.")
    tokenizer = SPM_ENCODINGS[name](path.read_bytes())
    if tokenizer.sha256 != run_config.get("tokenizer_sha256"):
        raise ValueError(f"{path} is not the tokenizer this run was trained with (sha256 differs).")
    return tokenizer
