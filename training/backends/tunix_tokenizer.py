"""Gemma's SentencePiece tokenizer behind the project's Tokenizer protocol (training/tokenizers.py).

Gemma ships `tokenizer.model` with pad=0, eos=1, bos=2 and the chat markers `<start_of_turn>` /
`<end_of_turn>` as user-defined pieces, so the rendered chat text encodes each marker as exactly one
id. The checks below refuse a tokenizer that would silently break that (a marker split into
characters can never be learned as "stop here"; pad == eos would mask the stop token out of the loss).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import sentencepiece as spm

from training.render import END_OF_TURN, START_OF_TURN


class TokenizerError(ValueError):
    """The SentencePiece model cannot serve as a Gemma chat tokenizer; the message says why."""


class SentencePieceTokenizer:
    """`encode` adds no BOS/EOS: callers decide (the Tunix backend prepends BOS like Tunix's sampler)."""

    def __init__(self, model_path: str | Path):
        self.path = Path(model_path)
        try:
            model_bytes = self.path.read_bytes()
        except OSError as exc:
            raise TokenizerError(f"Cannot read tokenizer {str(self.path)!r}: {exc.strerror}.") from exc
        self.processor = spm.SentencePieceProcessor()
        try:
            self.processor.LoadFromSerializedProto(model_bytes)
        except RuntimeError as exc:
            raise TokenizerError(f"{str(self.path)!r} is not a SentencePiece model: {exc}") from exc
        self.sha256 = hashlib.sha256(model_bytes).hexdigest()
        self.name = f"sentencepiece-{self.sha256[:12]}"
        self.vocab_size = int(self.processor.GetPieceSize())
        self.pad_id = int(self.processor.pad_id())
        self.eos_id = int(self.processor.eos_id())
        self.bos_id = int(self.processor.bos_id())
        self.start_of_turn_id = self._single_piece_id(START_OF_TURN)
        self.end_of_turn_id = self._single_piece_id(END_OF_TURN)
        self._check_special_ids()

    def _single_piece_id(self, marker: str) -> int:
        ids = self.processor.EncodeAsIds(marker)
        if len(ids) != 1 or ids[0] == self.processor.unk_id():
            raise TokenizerError(
                f"Tokenizer {str(self.path)!r} encodes {marker!r} as {ids}; it must be one user-defined id."
            )
        return int(ids[0])

    def _check_special_ids(self) -> None:
        names = {"pad_id": self.pad_id, "eos_id": self.eos_id, "bos_id": self.bos_id}
        undefined = [name for name, value in names.items() if value < 0]
        if undefined:
            raise TokenizerError(f"Tokenizer {str(self.path)!r} does not define {', '.join(undefined)}.")
        if self.pad_id == self.eos_id:
            raise TokenizerError(
                f"Tokenizer {str(self.path)!r} uses id {self.pad_id} for both pad and eos; they must differ."
            )

    def encode(self, text: str) -> list[int]:
        return [int(i) for i in self.processor.EncodeAsIds(text)]

    def decode(self, ids) -> str:
        """Text of `ids`; control ids (pad, bos, eos) vanish, chat markers come back as their text."""
        return self.processor.DecodeIds([int(i) for i in ids])
