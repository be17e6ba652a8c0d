"""Encoder speed as `xares bench` measures it: clips/s, x real time and peak memory per duration and batch.

Encoders: `mel` and a Whisper-base-sized encoder (Whisper-tiny-sized with --quick; random init), through
`xares_llm.bench.bench_encoder` (the extraction path; warm-up excluded, median and IQR of repeats).

    python -m benchmarks.encoder_speed [--quick] [--repeats 5] [--out benchmarks/results/encoder_speed.json]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from benchmarks.common import load_average, save_random_whisper, write_result
from xares_llm.bench import bench_encoder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per point after one warm-up (>= 5)")
    parser.add_argument("--quick", action="store_true", help="durations 1,10, batch sizes 1,4, Whisper-tiny-sized")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/encoder_speed.json"))
    args = parser.parse_args()
    if args.repeats < 5:
        parser.error("at least 5 repeats")
    durations, batches = ([1.0, 10.0], [1, 4]) if args.quick else ([1.0, 10.0, 30.0], [1, 4, 16])
    size = "whisper-tiny" if args.quick else "whisper-base"  # every Whisper call costs 30 s windows
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        whisper = str(save_random_whisper(size, Path(tmp) / "whisper"))
        for name, spec, kwargs in (("mel", "mel", None), (f"{size}-sized", size, {"model": whisper})):
            before = load_average()
            result = bench_encoder(spec, durations, batches, "cpu", "fp32", args.repeats, 1, kwargs)
            result |= {"name": name, "load_average": {"before": before, "after": load_average()}}
            result.pop("encoder_kwargs", None)  # a temporary path
            print({"encoder": name, "points": len(result["points"])}, flush=True)
            results.append(result)
    write_result(args.out, {"benchmark": "encoder_speed", "repeats": args.repeats, "results": results})


if __name__ == "__main__":
    main()
