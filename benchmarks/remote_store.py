"""Reading a feature store from a URL (cache/remote.py) against reading it from a local folder.

Every clip of the demo's `mel` store (four tasks, train and test) is read once per call, from a
fresh process's point of view (nothing listed yet, decoded chunks forgotten), in four modes:

- ``local``: the store's folder, page cache dropped;
- ``url_cold``: the same store at a ``file://`` URL with an empty mirror: list, fetch every file, read;
- ``url_warm``: the URL again with the mirror kept (a later run): list and compare, then read local files;
- ``epoch2``: the splits opened by the cold call, read again (a second epoch): no listing, no fetch.

``file://`` keeps the network out, so the ratios are the mirror's own overhead; a real remote adds
its latency per listed folder and per fetched file (``fetches`` says how many).

    python -m benchmarks.remote_store [--quick] [--out benchmarks/results/remote_store.json]
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
from pathlib import Path

REPEATS = 5


def main() -> None:
    from benchmarks.common import drop_page_cache, interleaved, load_average, ratio, write_result
    from xares_llm.audio.demo_data import DemoSize, write_demo_shards
    from xares_llm.cache import FeatureSplit
    from xares_llm.cache import reader as store_reader
    from xares_llm.cache import remote as store_remote
    from xares_llm.cache.chunks import CHUNK_CACHE_BYTES, ChunkCache
    from xares_llm.extract.run import extract
    from xares_llm.tasks.schema import SPLITS, resolve_tasks

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a tenth of the demo: about a minute on 2 CPU cores")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/remote_store.json"))
    args = parser.parse_args()
    size = DemoSize(30, 8) if args.quick else DemoSize()
    tasks = resolve_tasks("demo")

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        os.environ[store_remote.REMOTE_CACHE_ENV] = str(work / "mirror")
        write_demo_shards(work / "data", size)
        encoder_id = extract("mel", tasks, work / "cache", work / "data", dtype="float32").encoder_id
        url = f"file://{work / 'cache'}"
        names = [(t.dataset.name, s) for t in tasks for s in SPLITS]

        def read_all(stores: list[FeatureSplit]) -> int:
            return sum(int(s[i].frames.shape[0]) for s in stores for i in range(len(s)))

        def open_all(root: Path | str) -> list[FeatureSplit]:
            return [FeatureSplit(root, encoder_id, dataset, split) for dataset, split in names]

        # the second-epoch splits get a mirror of their own, which the cold mode's emptying leaves alone
        os.environ[store_remote.REMOTE_CACHE_ENV] = str(work / "mirror-epoch2")
        opened = open_all(url)
        read_all(opened)
        os.environ[store_remote.REMOTE_CACHE_ENV] = str(work / "mirror")
        modes = {
            "local": lambda: read_all(open_all(work / "cache")),
            "url_cold": lambda: read_all(open_all(url)),
            "url_warm": lambda: read_all(open_all(url)),
            "epoch2": lambda: read_all(opened),
        }

        def before(mode: str) -> None:
            store_reader.CHUNK_CACHE = ChunkCache(CHUNK_CACHE_BYTES)
            if mode in ("url_cold", "url_warm"):
                store_remote._STORES.clear()  # a new process: nothing listed yet
            if mode == "url_cold":
                shutil.rmtree(work / "mirror", ignore_errors=True)
            for folder in ("cache", "mirror", "mirror-epoch2"):
                if (work / folder).is_dir():
                    drop_page_cache(work / folder)

        load_before = load_average()
        timings = interleaved(modes, REPEATS, before=before)
        store_remote._STORES.clear()
        shutil.rmtree(work / "mirror", ignore_errors=True)
        cold = open_all(url)
        frames = read_all(cold)
        fetches = store_remote.remote_store(url).fetches
        mirrored = sum(p.stat().st_size for p in (work / "mirror").rglob("*") if p.is_file())
        stored = sum(p.stat().st_size for p in (work / "cache" / "features").rglob("*") if p.is_file())
        clips = sum(len(s) for s in cold)

    wall = {m: t["wall_s"] for m, t in timings.items()}
    result = {
        "benchmark": "remote_store",
        "quick": args.quick,
        "clips": clips,
        "frames": frames,
        "splits": len(names),
        "fetches_cold": fetches,
        "bytes_store": stored,
        "bytes_mirrored": mirrored,
        "timings": timings,
        # the cold read lists, fetches and reads: strictly more than a warm one, which lists and reads
        "cold_over_warm": ratio(wall["url_cold"], wall["url_warm"], minimum=1.0),
        "warm_over_local": ratio(wall["url_warm"], wall["local"], minimum=1.0),
        "epoch2_over_local": ratio(wall["epoch2"], wall["local"]),
        "load_average": {"before": load_before, "after": load_average()},
    }
    write_result(args.out, result)


if __name__ == "__main__":
    main()
