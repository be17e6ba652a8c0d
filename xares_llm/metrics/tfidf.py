"""DATE's soft TF-IDF token weights, computed over one corpus (candidates or references) at a time.

Words are compared through the Sentence-BERT *input* word-embedding table (static, L2-normalised,
float16, as in `mecat` 1.1.0): for tokens u, v of the corpus, sim(u, v) = e_u . e_v.

- soft document frequency of word w: df(w) = sum over sentences s of min(1, sum_{t in s} sim(w, t)^2)
- idf(w) = log((N + 1) / (df(w) + 1)) + 1, with N the number of sentences in the corpus
- in sentence s, token t: tf(t) = sum_{t' in s} sim(t, t')^2 and weight(t) = tf(t) idf(t), divided by
  the sentence's mean weight; [CLS] gets the sentence's largest weight, [SEP] its smallest, padding 1.

Special tokens ([PAD], [CLS], [SEP]) take part in neither sums. The float16 storage and rounding
steps of the reference are kept, because the weights feed a transformer whose output is thresholded.
The reference streams df through an N x L x V tensor; here the same sums come from one embedding-bag
over a V x V table of squared similarities, which is far cheaper for a 20 000-caption corpus.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from xares_llm.metrics.caption_models import SentenceEncoder, track

SIMILARITY_BLOCK_ROWS = 1024  # rows of the V x V word-similarity table computed per matmul
DF_BLOCK_SENTENCES = 1024  # sentences per embedding-bag when accumulating document frequencies
DF_BLOCK_WORDS = 2048  # vocabulary columns per pass: bounds the float32 table of squares to V x 2048
MIN_MEAN_WEIGHT = 1e-9  # a sentence whose mean weight is below this is left unnormalised


def word_similarity(encoder: SentenceEncoder, vocab: torch.Tensor) -> torch.Tensor:
    """sim(u, v) for the corpus vocabulary `vocab` [V]: [V, V] float16 on the CPU."""
    with torch.inference_mode():
        table = encoder.word_embeddings(vocab).to(torch.float16)
        table = torch.nn.functional.normalize(table, p=2, dim=-1)  # in float16, like the reference
        sim = torch.empty((len(vocab), len(vocab)), dtype=torch.float16)
        for start in range(0, len(vocab), SIMILARITY_BLOCK_ROWS):
            sim[start : start + SIMILARITY_BLOCK_ROWS] = (table[start : start + SIMILARITY_BLOCK_ROWS] @ table.T).cpu()
    return sim


def document_frequency(
    sim: torch.Tensor, positions: Sequence[np.ndarray], counts: np.ndarray, device: torch.device, progress: bool
) -> torch.Tensor:
    """Soft df(w) [V] float32: sum over sentences of min(1, sum_t sim(w, t)^2), with repeats counted.

    `positions[s]` are the vocabulary indices of sentence s's word tokens; `counts[s]` how often the
    sentence occurs in the corpus. Words are taken DF_BLOCK_WORDS at a time, so the float32 table of
    squares never exceeds V x DF_BLOCK_WORDS.
    """
    sentence_blocks = []
    for start in range(0, len(positions), DF_BLOCK_SENTENCES):
        block = positions[start : start + DF_BLOCK_SENTENCES]
        flat = torch.from_numpy(np.concatenate([*block, np.zeros(0, dtype=np.int64)])).to(device)
        offsets = torch.tensor(np.cumsum([0] + [len(p) for p in block[:-1]]), dtype=torch.long, device=device)
        weight = torch.from_numpy(counts[start : start + DF_BLOCK_SENTENCES].astype(np.float32)).to(device)
        sentence_blocks.append((flat, offsets, weight))
    df = torch.empty(sim.shape[0], dtype=torch.float32)
    word_blocks = range(0, sim.shape[0], DF_BLOCK_WORDS)
    for start in track(word_blocks, len(word_blocks), "DATE idf", progress):
        # squared[t, w] = sim(w, t)^2 rounded to float16, as the reference squares in float16.
        squared = sim[start : start + DF_BLOCK_WORDS].to(device).float().pow(2).to(torch.float16).float().T
        squared = squared.contiguous()
        total = torch.zeros(squared.shape[1], dtype=torch.float32, device=device)
        for flat, offsets, weight in sentence_blocks:
            per_sentence = torch.nn.functional.embedding_bag(flat, squared, offsets, mode="sum")  # [S, W]
            # The reference sums each sentence in float16, then clips at 1.
            total += weight @ per_sentence.to(torch.float16).clamp(0, 1).float()
        df[start : start + DF_BLOCK_WORDS] = total.cpu()
    return df


def tfidf_weights(
    encoder: SentenceEncoder, token_ids: Sequence[Sequence[int]], counts: np.ndarray, progress: bool = False
) -> list[np.ndarray]:
    """Per-token float16 weights for each distinct sentence of a corpus.

    `token_ids[s]` is a distinct sentence; `counts[s]` how many times it occurs in the corpus (the
    corpus size N and the document frequencies count every occurrence).
    """
    special = {encoder.pad_id, encoder.cls_id, encoder.sep_id}
    words = [np.array([t for t in ids if t not in special], dtype=np.int64) for ids in token_ids]
    vocab = np.unique(np.concatenate([*words, np.zeros(0, dtype=np.int64)]))  # sorted, as torch.unique
    weights = [np.ones(len(ids), dtype=np.float16) for ids in token_ids]
    if len(vocab) == 0:
        return weights
    positions = [np.searchsorted(vocab, w) for w in words]
    sim = word_similarity(encoder, torch.from_numpy(vocab))
    df = document_frequency(sim, positions, counts, encoder.device, progress)
    n_docs = int(counts.sum())
    idf = (torch.log((n_docs + 1) / (df + 1)) + 1).numpy()  # float32
    sim_np = sim.numpy()
    for s, ids in enumerate(token_ids):
        idx = positions[s]
        if len(idx) == 0:
            continue
        # numpy float16 arithmetic, step for step as the reference (square, row sum, times idf).
        tf = np.sum(sim_np[np.ix_(idx, idx)] ** 2, axis=1)
        w = tf * idf[idx]
        mean = np.mean(w)
        if mean > MIN_MEAN_WEIGHT:
            w = w / mean
        row = np.asarray(ids)
        is_word = ~np.isin(row, list(special))
        weights[s][is_word] = w.astype(np.float16)
        if row[0] == encoder.cls_id:
            weights[s][0] = np.float16(float(w.max()))
        sep = np.flatnonzero(row == encoder.sep_id)
        if len(sep):
            weights[s][sep[0]] = np.float16(float(w.min()))
    return weights
