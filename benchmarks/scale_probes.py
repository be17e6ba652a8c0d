"""Count-bound costs of stage two measured directly on a store, one JSON line on stdout.

`full_scale` runs each as its own process (so RSS is that measurement's alone):

    python -m benchmarks.scale_probes open CACHE ENCODER_ID --mixture task1
        opening every train split of the mixture (the reader's metadata), then the (clip, target)
        pairs and the sampler's set-up (its first pool of batches), each timed, with the RSS growth
"""

from __future__ import annotations

import argparse
import json
import time

from xares_llm.cache.metadata import read_encoder_info
from xares_llm.cache.reader import FeatureSplit
from xares_llm.lalm.sampler import MixtureSampler, window_frames
from xares_llm.memory import rss_mb
from xares_llm.tasks.data import read_targets
from xares_llm.tasks.schema import load_mixture, mixture_weights

BATCH_SIZE = 4  # the reference recipe's batch


def open_stores(cache: str, encoder_id: str, mixture_name: str) -> dict:
    """Time and memory of each step of the training set-up, in the order `xares train` does them."""
    mixture = load_mixture(mixture_name)
    tasks = [mixture.tasks[name] for name in mixture.weights]
    out: dict = {"rss_start_mb": rss_mb()}
    start, cpu = time.perf_counter(), time.process_time()
    stores = [FeatureSplit(cache, encoder_id, t.dataset.name, "train") for t in tasks]
    out["open_s"], out["open_cpu_s"] = time.perf_counter() - start, time.process_time() - cpu
    out["rss_after_open_mb"] = rss_mb()
    out["clips"] = sum(len(s) for s in stores)
    out["parts"] = sum(len(s.parts) for s in stores)
    start, cpu = time.perf_counter(), time.process_time()
    splits = [read_targets(t, s, "train") for t, s in zip(tasks, stores, strict=True)]
    out["targets_s"], out["targets_cpu_s"] = time.perf_counter() - start, time.process_time() - cpu
    out["targets"] = sum(len(s.targets) for s in splits)
    out["rss_after_targets_mb"] = rss_mb()
    weights = mixture_weights(mixture)
    start, cpu = time.perf_counter(), time.process_time()
    frame_rate = read_encoder_info(cache, encoder_id).frame_rate_hz
    sampler = MixtureSampler(splits, [weights[t.name] for t in tasks], window_frames(30.0, frame_rate), BATCH_SIZE, 0)
    sampler.examples(0)
    out["sampler_s"], out["sampler_cpu_s"] = time.perf_counter() - start, time.process_time() - cpu
    out["rss_after_sampler_mb"] = rss_mb()
    out["metadata_mb"] = out["rss_after_targets_mb"] - out["rss_start_mb"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["open"])
    parser.add_argument("cache")
    parser.add_argument("encoder_id")
    parser.add_argument("--mixture", default="task1")
    args = parser.parse_args()
    out = open_stores(args.cache, args.encoder_id, args.mixture)
    print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in out.items()}))


if __name__ == "__main__":
    main()
