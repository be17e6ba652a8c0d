"""Training batches from the feature stores: mixture sampling, random windows, length bucketing.

Per example: pick a task by mixture weight, then a (clip, target) pair uniformly, then a random
window of `window_seconds` worth of frames. Uniform pairs are what the reference system's stream
gives in the long run: it resamples shards uniformly but reads each drawn shard whole, so a shard's
share of the draws is its share of the pairs (docs/reference-parity.md). Examples are drawn in pools
of `POOL_BATCHES` batches, sorted by length and cut into batches (less padding), the batch order
shuffled. Everything is a pure function of (seed, step), so the sampler's whole state is the
step: a resumed run sees exactly the batches the uninterrupted run would have.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from transformers import PreTrainedTokenizerBase

from xares_llm.lalm.model import Batch
from xares_llm.tasks.data import TaskSplit

POOL_BATCHES = 16  # batches drawn together and bucketed by length


@dataclass(frozen=True)
class Example:
    task: int  # index into the sampler's task list
    pair: int  # index into that task's (clip, target) pairs
    start: int  # first frame of the window
    stop: int  # one past the last frame


class MixtureSampler:
    """Deterministic examples for any training step (see the module docstring)."""

    def __init__(
        self, tasks: list[TaskSplit], weights: list[float], window_frames: int, batch_size: int, seed: int
    ) -> None:
        self.tasks, self.window_frames, self.batch_size, self.seed = tasks, window_frames, batch_size, seed
        total = sum(weights)
        self.probabilities = np.array([w / total for w in weights])
        self._pool: tuple[int, list[list[Example]]] | None = None

    def _draw_pool(self, pool: int) -> list[list[Example]]:
        rng = np.random.default_rng([self.seed, pool])
        examples = []
        for task_index in rng.choice(len(self.tasks), size=POOL_BATCHES * self.batch_size, p=self.probabilities):
            data = self.tasks[task_index]
            pair = int(rng.integers(len(data.targets)))
            n_frames = int(data.store.frame_counts[data.clip_index[pair]])
            start = int(rng.integers(0, n_frames - self.window_frames + 1)) if n_frames > self.window_frames else 0
            examples.append(Example(int(task_index), pair, start, min(n_frames, start + self.window_frames)))
        examples.sort(key=lambda e: e.stop - e.start)
        batches = [examples[i : i + self.batch_size] for i in range(0, len(examples), self.batch_size)]
        order = rng.permutation(len(batches))
        return [batches[i] for i in order]

    def examples(self, step: int) -> list[Example]:
        pool, position = divmod(step, POOL_BATCHES)
        if self._pool is None or self._pool[0] != pool:
            self._pool = (pool, self._draw_pool(pool))
        return self._pool[1][position]


class BatchBuilder:
    """Examples -> a model `Batch`: reads frame windows from the stores, tokenizes prompt and answer."""

    def __init__(self, tasks: list[TaskSplit], tokenizer: PreTrainedTokenizerBase):
        self.tasks, self.tokenizer = tasks, tokenizer
        self.prompt_ids = [self.encode(t.task.prompt) for t in tasks]

    def encode(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def __call__(self, examples: list[Example]) -> Batch:
        windows = []
        for e in examples:
            data = self.tasks[e.task]
            windows.append(data.store.frames(int(data.clip_index[e.pair]), e.start, e.stop))
        return Batch(
            features=pad_frames(windows),
            frame_lengths=torch.tensor([len(w) for w in windows], dtype=torch.long),
            prompt_ids=[self.prompt_ids[e.task] for e in examples],
            answer_ids=[self.encode(self.tasks[e.task].targets[e.pair]) for e in examples],
            tasks=[self.tasks[e.task].task.name for e in examples],
        )


def pad_frames(windows: list[np.ndarray]) -> torch.Tensor:
    """Frame arrays (T_i, D) -> (B, max T_i, D) float32, zero-padded on the right."""
    longest = max(1, max(len(w) for w in windows))
    out = torch.zeros(len(windows), longest, windows[0].shape[1])
    for i, window in enumerate(windows):
        out[i, : len(window)] = torch.from_numpy(np.asarray(window, dtype=np.float32))
    return out


class TrainBatches(torch.utils.data.IterableDataset):
    """Batches for steps [first_step, last_step); DataLoader workers take every n-th step in turn,
    which the DataLoader interleaves back into step order. Under torchrun, rank r of n keeps
    examples r, r + n, ... of each step's batch."""

    def __init__(
        self,
        sampler: MixtureSampler,
        builder: BatchBuilder,
        first_step: int,
        last_step: int,
        rank: int = 0,
        world_size: int = 1,
    ):
        super().__init__()
        self.sampler, self.builder, self.first_step, self.last_step = sampler, builder, first_step, last_step
        self.rank, self.world_size = rank, world_size

    def __iter__(self) -> Iterator[Batch]:
        info = torch.utils.data.get_worker_info()
        worker, workers = (info.id, info.num_workers) if info else (0, 1)
        for step in range(self.first_step + worker, self.last_step, workers):
            yield self.builder(self.sampler.examples(step)[self.rank :: self.world_size])


def window_frames(seconds: float, frame_rate_hz: float) -> int:
    """Frames that cover `seconds` of audio at the store's frame rate."""
    return max(1, math.ceil(seconds * frame_rate_hz))
