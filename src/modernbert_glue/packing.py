"""Padding-free ("packed") batches for encoder classifiers, with PyTorch-native attention (SDPA).

A batch of sentences is concatenated into a few rows of at most `row_tokens` tokens. Attention is confined to
each sentence by a block-diagonal boolean mask; positions restart at 0 for every sentence; ModernBERT's local
layers additionally see only tokens within its sliding window (|i - j| <= config.sliding_window, the rule
transformers applies to padded batches). Pooling (CLS or mean) is done per sentence, then the model's own head.

The HF model is used as is (composition): `PackedClassifier(model)` calls its encoder with the packed inputs
and its head modules on the pooled vectors, so a saved model folder is unchanged. Tests check logits, loss
and gradients against the padded model.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import torch
from torch import nn

from .segments import label_array, type_ids


@dataclass
class PackedBatch:
    input_ids: torch.Tensor  # [rows, width], pad at row ends
    position_ids: torch.Tensor  # [rows, width], restarting per sentence
    segment_ids: torch.Tensor  # [rows, width], sentence index within the batch; -1 on padding
    starts: torch.Tensor  # [sentences] flat index (row * width + col) of each sentence's first token
    lengths: torch.Tensor  # [sentences]
    labels: torch.Tensor | None = None
    token_type_ids: torch.Tensor | None = None  # [rows, width], for models with segment embeddings (BERT)

    @property
    def num_sentences(self) -> int:
        return int(self.lengths.numel())

    @property
    def real_tokens(self) -> int:
        return int(self.lengths.sum())

    def tensors(self) -> tuple[torch.Tensor | None, ...]:
        """The fields in order; the optional ones (labels, token_type_ids) may be None."""
        return tuple(getattr(self, f.name) for f in fields(self))

    def to(self, device) -> PackedBatch:
        return PackedBatch(*(t.to(device) if t is not None else None for t in self.tensors()))

    def clone(self) -> PackedBatch:
        return PackedBatch(*(t.clone() if t is not None else None for t in self.tensors()))

    def copy_(self, other: PackedBatch) -> PackedBatch:
        """Copy `other` into these tensors in place (a captured step's static inputs); both must have the
        same fields present and the same shapes."""
        for f, mine, theirs in zip(fields(self), self.tensors(), other.tensors()):
            if (mine is None) != (theirs is None):
                raise ValueError(f"PackedBatch.copy_: field {f.name} is None in only one of the batches")
            if mine is not None:
                if mine.shape != theirs.shape:
                    raise ValueError(f"PackedBatch.copy_: field {f.name} has shape {tuple(theirs.shape)}, "
                                     f"not {tuple(mine.shape)}")
                mine.copy_(theirs, non_blocking=True)
        return self


def batches_to(batches: list[PackedBatch], device) -> list[PackedBatch]:
    """`batches` on `device` with one host-to-device copy per dtype (each tensor a view of one buffer) rather than
    one per tensor: a run's thousands of prepared batches would otherwise pay a copy's fixed cost thousands of
    times. From pinned memory on CUDA, so that the copy runs asynchronously."""
    device = torch.device(device)
    groups: dict[torch.dtype, list[torch.Tensor]] = {}
    for batch in batches:
        for tensor in batch.tensors():
            if tensor is not None:
                groups.setdefault(tensor.dtype, []).append(tensor)
    moved: dict[int, torch.Tensor] = {}
    for tensors in groups.values():
        host = torch.cat([t.reshape(-1) for t in tensors])
        buffer = (host.pin_memory() if device.type == "cuda" else host).to(device, non_blocking=True)
        for tensor, view in zip(tensors, buffer.split([t.numel() for t in tensors])):
            moved[id(tensor)] = view.view(tensor.shape)
    return [PackedBatch(*(moved[id(t)] if t is not None else None for t in batch.tensors())) for batch in batches]


def pack(sequences: list[list[int]], labels=None, *, row_tokens: int | None = None, pad_id: int = 0,
         fixed_rows: int | None = None, sep_id: int | None = None) -> PackedBatch:
    """Concatenate token id lists into rows of at most `row_tokens` tokens (one row when None), in order.

    `fixed_rows` (with `row_tokens`): the result is exactly [fixed_rows, row_tokens], padded with empty rows, so
    that every batch has one static shape (what torch.compile and CUDA graphs need to capture a step once). A
    batch that needs more rows gets the next multiple of `fixed_rows`: a second shape, never lost sentences.
    """
    if not sequences:
        raise ValueError("cannot pack an empty batch")
    if fixed_rows is not None and (row_tokens is None or fixed_rows < 1):
        raise ValueError("fixed_rows needs row_tokens and must be at least 1")
    limit = row_tokens or sum(len(s) for s in sequences)
    assignment = assign_rows([len(s) for s in sequences], limit)
    rows: list[list[int]] = [[] for _ in range(assignment[-1] + 1)]
    for i, (seq, row) in enumerate(zip(sequences, assignment)):
        rows[row].extend([i] * len(seq))
    width = max(len(r) for r in rows)
    if fixed_rows is not None:
        width = limit
        rows += [[] for _ in range(-len(rows) % fixed_rows)]
    segment = torch.full((len(rows), width), -1, dtype=torch.long)
    for r, seg in enumerate(rows):
        segment[r, : len(seg)] = torch.tensor(seg, dtype=torch.long)
    flat_seg = segment.flatten()
    lengths = torch.tensor([len(s) for s in sequences], dtype=torch.long)
    real = torch.nonzero(flat_seg >= 0).squeeze(1)
    first = torch.ones_like(real, dtype=torch.bool)
    first[1:] = flat_seg[real[1:]] != flat_seg[real[:-1]]
    starts = real[first]
    ids = torch.full((len(rows) * width,), pad_id, dtype=torch.long)
    ids[real] = torch.tensor([t for s in sequences for t in s], dtype=torch.long)
    positions = torch.zeros(len(rows) * width, dtype=torch.long)
    positions[real] = torch.cat([torch.arange(n) for n in lengths.tolist()])
    types = None
    if sep_id is not None:  # segment ids sentence by sentence (segments.type_ids)
        types = torch.zeros(len(rows) * width, dtype=torch.long)
        types[real] = torch.from_numpy(np.concatenate([type_ids(np.asarray(s), sep_id) for s in sequences])).long()
        types = types.view(len(rows), width)
    return PackedBatch(
        input_ids=ids.view(len(rows), width),
        position_ids=positions.view(len(rows), width),
        segment_ids=segment,
        starts=starts,
        lengths=lengths,
        labels=None if labels is None else _label_tensor(labels),
        token_type_ids=types,
    )


def _label_tensor(labels) -> torch.Tensor:
    return torch.from_numpy(label_array(labels))


def assign_rows(lengths, row_tokens: int) -> list[int]:
    """The row of each sentence, filled in order: a sentence that does not fit the current row starts the next.
    The one rule `pack` and the training engine's static shapes (training/budgets.py) both count rows by."""
    rows: list[int] = []
    row, used = -1, row_tokens + 1  # as if a full row came before the first sentence
    for i, n in enumerate(lengths):
        if n > row_tokens:
            raise ValueError(f"sentence {i} has {n} tokens, more than row_tokens={row_tokens}")
        if used + n > row_tokens:
            row, used = row + 1, 0
        rows.append(row)
        used += n
    return rows


def pad_sentences(batch: PackedBatch, slots: int) -> PackedBatch:
    """`batch` with exactly `slots` sentence slots, the extra ones empty: start 0, length 1 (pooling divides by
    it), label -100 (cross-entropy's ignore_index), so that a short last batch keeps the static shape of a
    full one and its empty slots add nothing to the loss or the gradients."""
    extra = slots - batch.num_sentences
    if extra < 0:
        raise ValueError(f"{batch.num_sentences} sentences do not fit {slots} slots")

    def grow(t, fill):
        return torch.cat([t, torch.full((extra,), fill, dtype=t.dtype)]) if t is not None else None

    return PackedBatch(batch.input_ids, batch.position_ids, batch.segment_ids, grow(batch.starts, 0),
                       grow(batch.lengths, 1), grow(batch.labels, -100), batch.token_type_ids)


def row_budget(sequences: list[list[int]], row_tokens: int | None) -> int | None:
    """Tokens per packed row: `row_tokens`, widened to the longest sentence (which then gets a row alone)."""
    return max(row_tokens, max(map(len, sequences))) if row_tokens else None


def budget_rows(token_budget: int | None, row_tokens: int | None) -> int | None:
    """Rows of `row_tokens` in a fixed token budget (None: no fixed shape)."""
    if not token_budget:
        return None
    if not row_tokens or token_budget % row_tokens:
        raise ValueError(f"a token budget ({token_budget}) must be a multiple of the packed row ({row_tokens} tokens)")
    return token_budget // row_tokens


def block_masks(batch: PackedBatch, sliding_window: int | None = None) -> dict[str, torch.Tensor]:
    """Boolean [rows, 1, width, width] masks (True = may attend): within-sentence, and within-sentence-and-window."""
    seg = batch.segment_ids
    same = (seg[:, :, None] == seg[:, None, :]) & (seg[:, :, None] >= 0)
    # Padding rows attend to themselves only, so softmax never sees an all-masked row (NaN).
    eye = torch.eye(seg.shape[1], dtype=torch.bool, device=seg.device)[None]
    same = same | (eye & (seg[:, :, None] < 0))
    masks = {"full_attention": same[:, None]}
    if sliding_window is not None:
        pos = batch.position_ids
        near = (pos[:, :, None] - pos[:, None, :]).abs() <= sliding_window
        masks["sliding_attention"] = (same & near)[:, None]
    return masks


class PackedClassifier(nn.Module):
    """Runs a Hugging Face sequence classifier (ModernBERT or BERT-style) on a PackedBatch."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model
        self.kind = model.config.model_type
        if self.kind not in ("modernbert", "bert"):
            raise ValueError(f"packed path supports modernbert and bert models, not '{self.kind}'")

    @property
    def config(self):
        """The wrapped model's config, which the HF Trainer reads (its label smoothing checks `problem_type`)."""
        return self.model.config

    def encode(self, batch: PackedBatch) -> torch.Tensor:
        """Last hidden states, flattened to [rows * width, hidden]."""
        m = self.model
        if self.kind == "modernbert":
            masks = block_masks(batch, m.config.sliding_window)
            hidden = m.model(input_ids=batch.input_ids, attention_mask=masks, position_ids=batch.position_ids)[0]
        else:
            mask = block_masks(batch)["full_attention"]
            types = batch.token_type_ids if batch.token_type_ids is not None else torch.zeros_like(batch.input_ids)
            hidden = m.bert(input_ids=batch.input_ids, attention_mask=mask, position_ids=batch.position_ids,
                            token_type_ids=types)[0]
        return hidden.reshape(-1, hidden.shape[-1])

    def pool(self, hidden: torch.Tensor, batch: PackedBatch) -> torch.Tensor:
        if self.kind == "modernbert" and self.model.config.classifier_pooling == "mean":
            # Padding goes to one extra slot that is dropped: no boolean indexing, whose data-dependent shape
            # would break torch.compile's graph (and CUDA graph capture) here.
            n = batch.num_sentences
            seg = batch.segment_ids.flatten()
            slot = torch.where(seg >= 0, seg, torch.full_like(seg, n))
            sums = torch.zeros(n + 1, hidden.shape[-1], dtype=hidden.dtype, device=hidden.device)
            sums = sums.index_add(0, slot, hidden)[:n]
            return sums / batch.lengths.to(hidden.dtype)[:, None]
        return hidden[batch.starts]  # CLS: each sentence's first token

    def logits(self, batch: PackedBatch) -> torch.Tensor:
        """[sentences, labels] for a batch on the model's device, without a loss: the engine's step computes its
        own (label smoothing), and a captured step would replay an unused one every step."""
        m = self.model
        pooled = self.pool(self.encode(batch), batch)
        if self.kind == "modernbert":
            return m.classifier(m.drop(m.head(pooled)))
        pooled = m.bert.pooler(pooled[:, None]) if m.bert.pooler is not None else pooled
        return m.classifier(m.dropout(pooled))

    def forward(self, packed: PackedBatch, labels=None, **unused):
        """Trainer-compatible: called as model(packed=..., labels=...); `unused` takes the Trainer's extra
        keywords (num_items_in_batch)."""
        from transformers.modeling_outputs import SequenceClassifierOutput

        m = self.model
        batch = packed.to(m.device) if packed.input_ids.device != m.device else packed
        logits = self.logits(batch)
        loss = None
        if batch.labels is not None:  # the HF models' own losses: MSE for one output (regression)
            if logits.shape[-1] == 1:
                loss = nn.functional.mse_loss(logits.float().squeeze(-1), batch.labels.float())
            else:
                loss = nn.functional.cross_entropy(logits.float(), batch.labels)
        return SequenceClassifierOutput(loss=loss, logits=logits)
