"""Tokenizers and prompts for the language-conditioned families.

`build_tiny_tokenizer` makes an offline byte-level tokenizer for tiny models built from config:
ids 0..2 are <unk> <s> </s>, then the 256 byte symbols, then 256 reserved action tokens, so the
last 256 ids of the base vocabulary are the action ids exactly as in OpenVLA (a <PAD> token is
added after the base vocabulary, as OpenVLA adds its pad token). Real checkpoints bring their own
tokenizer files.

`PromptBatcher` turns instructions into fixed-length id rows laid out as
`[BOS][pad ... pad][prompt tokens]`: the image patches are inserted right after BOS (OpenVLA's
layout) and the last column is always the last prompt token, so every row's action tokens start at
the same position. A fixed length lets rollout buffers stack steps with different instructions.
"""

from __future__ import annotations

import numpy as np
import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers
from transformers import PreTrainedTokenizerBase, PreTrainedTokenizerFast

OPENVLA_PROMPT = "In: What action should the robot take to {instruction}?\nOut:"


TINY_BASE_VOCAB = 515
"""3 special ids, 256 bytes, 256 action ids."""


def build_tiny_tokenizer(base_vocab: int = TINY_BASE_VOCAB) -> PreTrainedTokenizerFast:
    """A byte-level tokenizer that needs no download: ids 0-2 special, then the 256 bytes, then unused
    filler ids up to `base_vocab` - 256, then the 256 action ids (the last of the base vocabulary, as in
    OpenVLA), then <PAD>. 515 base ids by default (action ids 259..514, pad 515); 32000 gives a model
    Llama-2's vocabulary layout (action ids 31744..31999, pad 32000) for published-size builds."""
    if base_vocab < TINY_BASE_VOCAB:
        raise ValueError(f"base_vocab={base_vocab} must be at least {TINY_BASE_VOCAB} (specials, bytes, action ids)")
    vocab: dict[str, int] = {"<unk>": 0, "<s>": 1, "</s>": 2}
    for symbol in sorted(pre_tokenizers.ByteLevel.alphabet()):
        vocab[symbol] = len(vocab)
    for j in range(base_vocab - TINY_BASE_VOCAB):
        vocab[f"<unused_{j}>"] = len(vocab)
    for j in range(256):
        vocab[f"<act_{j}>"] = len(vocab)
    core = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    tok = PreTrainedTokenizerFast(tokenizer_object=core, bos_token="<s>", eos_token="</s>", unk_token="<unk>")
    tok.add_special_tokens({"pad_token": "<PAD>"})
    return tok


def format_prompt(instruction: str, template: str = OPENVLA_PROMPT) -> str:
    """OpenVLA's prompt for one instruction (lower-cased, trailing period dropped)."""
    return template.format(instruction=instruction.strip().rstrip(".").lower())


PROMPT_CACHE_SIZE = 4096
"""Distinct instructions whose token ids are kept (a task suite has at most a few hundred)."""


class PromptBatcher:
    """Instructions -> (input_ids, attention_mask) int64 tensors of shape (N, max_len), cached per instruction."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase, max_len: int, suffix_id: int | None = None,
                 template: str = OPENVLA_PROMPT) -> None:
        if tokenizer.bos_token_id is None or tokenizer.pad_token_id is None:
            raise ValueError("the tokenizer needs a bos_token and a pad_token (add one with add_special_tokens)")
        self.tokenizer, self.max_len, self.suffix_id, self.template = tokenizer, max_len, suffix_id, template
        self._cache: dict[str, list[int]] = {}  # bounded: a server may see unboundedly many prompts

    def ids(self, instruction: str) -> list[int]:
        """Prompt ids without BOS (plus the suffix id, e.g. Llama's 29871 '▁', when configured)."""
        if instruction not in self._cache:
            ids = self.tokenizer(format_prompt(instruction, self.template), add_special_tokens=False)["input_ids"]
            if self.suffix_id is not None and (not ids or ids[-1] != self.suffix_id):
                ids = ids + [self.suffix_id]
            if len(ids) + 1 > self.max_len:
                raise ValueError(
                    f"instruction {instruction!r} needs {len(ids) + 1} prompt tokens but model.max_prompt_tokens="
                    f"{self.max_len}; raise model.max_prompt_tokens"
                )
            if len(self._cache) >= PROMPT_CACHE_SIZE:
                self._cache.pop(next(iter(self._cache)))  # evict the oldest entry
            self._cache[instruction] = ids
            return ids
        return self._cache[instruction]

    def __call__(self, instructions: list[str], device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
        n = len(instructions)
        input_ids = np.full((n, self.max_len), self.tokenizer.pad_token_id, dtype=np.int64)
        mask = np.zeros((n, self.max_len), dtype=np.int64)
        input_ids[:, 0], mask[:, 0] = self.tokenizer.bos_token_id, 1
        for i, text in enumerate(instructions):
            ids = self.ids(text)
            input_ids[i, self.max_len - len(ids):] = ids
            mask[i, self.max_len - len(ids):] = 1
        return torch.from_numpy(input_ids).to(device), torch.from_numpy(mask).to(device)


def trim_padding(input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Drop the columns that are padding in every row (results are unchanged: pads are masked and
    positions come from the mask); keeps BOS at column 0."""
    keep = attention_mask.bool().any(dim=0)
    keep[0] = True
    if bool(keep.all()):
        return input_ids, attention_mask
    return input_ids[:, keep], attention_mask[:, keep]


__all__ = ["OPENVLA_PROMPT", "PromptBatcher", "build_tiny_tokenizer", "format_prompt", "trim_padding"]
