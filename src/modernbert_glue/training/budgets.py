"""Static shapes for the training engine: which sentences each step takes, and the few token budgets they fill.

A captured step (a CUDA graph, or a compiled graph) replays one fixed shape. Every packed batch is therefore
padded to a *budget*: a number of rows of `width` tokens, from a small set chosen once for the whole run
from the rows each of its batches needs (greedy in-order rows, packing.assign_rows). Each batch takes the
smallest budget that fits, so no sentence is ever dropped or truncated, and the set is chosen to pad least
(an exact search over the run's row counts). Sentence slots are fixed too: a short last batch gets empty
slots (packing.pad_sentences).

The data order is a fresh permutation per epoch from (seed, epoch), so a resumed run re-derives the exact
batches of an uninterrupted one from its step alone; the last batch of an epoch is kept short, as the
Trainer's sampler does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..inputs import PACKED_ROW_TOKENS, pack_batch
from ..packing import PackedBatch, assign_rows, pad_sentences

MAX_SHAPES = 3  # each shape costs one capture (and one compile)
SHAPE_SLACK = 0.01  # another shape must save more than 1% of the run's rows


@dataclass(frozen=True)
class Plan:
    """Every step of a run: its sentence indices and its budget (rows of `width` tokens)."""

    steps_per_epoch: int
    total_steps: int
    width: int
    batches: list[np.ndarray]
    rows: list[int]  # the budget of each step, in rows

    @property
    def shapes(self) -> list[int]:
        return sorted(set(self.rows))


def total_steps(n: int, batch_size: int, epochs: float, max_steps: int = -1) -> tuple[int, int]:
    """(steps per epoch, total steps) as the Trainer counts them: max_steps when > 0, else ceil(epochs x steps
    per epoch); fractional epochs stop mid-epoch."""
    per_epoch = max(1, math.ceil(n / batch_size))
    return per_epoch, max_steps if max_steps > 0 else math.ceil(epochs * per_epoch)


def epoch_order(n: int, seed: int, epoch: int) -> np.ndarray:
    return np.random.default_rng((seed, epoch)).permutation(n)


def row_width(lengths: list[int]) -> int:
    """Row width: PACKED_ROW_TOKENS, or the next multiple of it that holds the longest sentence (so that no
    batch ever needs a wider row than its budget has)."""
    return PACKED_ROW_TOKENS * max(1, math.ceil(max(lengths, default=1) / PACKED_ROW_TOKENS))


def rows_needed(lengths, width: int) -> int:
    return assign_rows(lengths, width)[-1] + 1


def choose_budgets(needs: list[int], max_shapes: int = MAX_SHAPES, multiple: int = 1) -> list[int]:
    """At most `max_shapes` row counts (each a multiple of `multiple`) covering every need, chosen so that the
    total padding (sum over batches of budget - need) is smallest (an exact dynamic programme over the
    distinct needs, which are few), with no more shapes than that needs (SHAPE_SLACK)."""
    rounded = [multiple * math.ceil(n / multiple) for n in needs]
    values, counts = np.unique(rounded, return_counts=True)
    values, counts = values.tolist(), counts.tolist()
    m = len(values)

    def cost(lo: int, hi: int) -> int:  # needs values[lo..hi] all padded up to values[hi]
        return sum(c * (values[hi] - v) for v, c in zip(values[lo : hi + 1], counts[lo : hi + 1]))

    # best[k][j]: least padding for values[0..j] with k budgets, the largest being values[j]
    best = [[math.inf] * m for _ in range(max_shapes + 1)]
    choice = [[-1] * m for _ in range(max_shapes + 1)]
    for j in range(m):
        best[1][j] = cost(0, j)
    for k in range(2, max_shapes + 1):
        for j in range(m):
            for i in range(j):
                total = best[k - 1][i] + cost(i + 1, j)
                if total < best[k][j]:
                    best[k][j], choice[k][j] = total, i
    # The fewest shapes within SHAPE_SLACK of the least padding: a shape that saves almost nothing still costs a
    # capture (on SST-2, a third shape served 17 of 2,106 steps and saved 0.2% of the rows).
    least = min(best[k][m - 1] for k in range(1, max_shapes + 1))
    total = sum(v * c for v, c in zip(values, counts))
    k = next(k for k in range(1, max_shapes + 1) if total + best[k][m - 1] <= (1 + SHAPE_SLACK) * (total + least))
    chosen, j = [], m - 1
    while j >= 0 and k >= 1:
        chosen.append(values[j])
        j, k = choice[k][j], k - 1
    return sorted(chosen)


def fit(need: int, budgets: list[int]) -> int:
    """The smallest budget that holds `need` rows."""
    return next(b for b in budgets if b >= need)


def plan_run(lengths: list[int], batch_size: int, epochs: float, seed: int, max_steps: int = -1,
             token_budget: int = 0) -> Plan:
    """The whole run's batches and budgets. `token_budget` (train.packed_token_budget): budgets are multiples
    of it, as the Trainer path's static shape is."""
    per_epoch, total = total_steps(len(lengths), batch_size, epochs, max_steps)
    width = row_width(lengths)
    batches = []
    for epoch in range(math.ceil(total / per_epoch)):
        order = epoch_order(len(lengths), seed, epoch)
        batches += [order[i : i + batch_size] for i in range(0, len(lengths), batch_size)]
    batches = batches[:total]
    needs = [rows_needed([lengths[j] for j in b], width) for b in batches]
    multiple = max(1, token_budget // width) if token_budget else 1
    budgets = choose_budgets(needs, multiple=multiple)
    return Plan(per_epoch, total, width, batches, [fit(n, budgets) for n in needs])


def eval_plan(lengths: list[int], batch_size: int) -> Plan:
    """Evaluation batches in input order, on budgets chosen the same way."""
    width = row_width(lengths)
    batches = [np.arange(i, min(i + batch_size, len(lengths))) for i in range(0, len(lengths), batch_size)]
    needs = [rows_needed([lengths[j] for j in b], width) for b in batches]
    budgets = choose_budgets(needs)
    return Plan(len(batches), len(batches), width, batches, [fit(n, budgets) for n in needs])


def static_batch(ids: list[list[int]], labels: list[int], indices, rows: int, width: int, slots: int,
                 pad_id: int, sep_id: int | None = None) -> PackedBatch:
    """The sentences `indices` packed into exactly [rows, width] tokens and `slots` sentence slots."""
    seqs = [ids[i] for i in indices]
    batch = pack_batch(seqs, pad_id, [labels[i] for i in indices], token_budget=rows * width, row_tokens=width,
                       sep_id=sep_id)
    assert batch.input_ids.shape == (rows, width), (batch.input_ids.shape, rows, width)
    return pad_sentences(batch, slots)
