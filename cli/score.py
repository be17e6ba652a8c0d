"""`xares score`: recompute every metric from a run's predictions, without loading its model."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from xares_llm.cache.root import local_cache_root
from xares_llm.cli.options import CacheOpt, ConfigDirOpt, add_config_dirs
from xares_llm.cli.render import print_scores
from xares_llm.errors import XaresError

if TYPE_CHECKING:
    from xares_llm.metrics import MetricOptions

SbertOpt = Annotated[
    str | None,
    typer.Option(
        "--sbert",
        help="Sentence-BERT for FENSE/DATE: a local dir or hub id \\[default: $XARES_SBERT or the official model].",
    ),
]
EcheckerOpt = Annotated[
    str | None,
    typer.Option(
        "--echecker",
        help="FENSE error checker: a .ckpt file, or 'none' to disable the penalty "
        "\\[default: $XARES_ECHECKER or the official download].",
    ),
]


def metric_options(sbert: str | None, echecker: str | None, cache: Path | str | None) -> MetricOptions:
    """FENSE/DATE model choices; the echecker download lands in <cache>/metrics (the local cache beside a URL one)."""
    from xares_llm.metrics import MetricOptions

    return MetricOptions(sbert=sbert, echecker=echecker, cache_dir=local_cache_root(cache), progress=True)


def score(
    run_dir: Annotated[Path, typer.Argument(help="A run directory with predictions/*.jsonl.")],
    sbert: SbertOpt = None,
    echecker: EcheckerOpt = None,
    cache: CacheOpt = None,
    config_dir: ConfigDirOpt = None,
) -> None:
    """Score predictions/*.jsonl of RUN_DIR; writes scores.json and scores.tsv.

    String metrics (accuracy, mAP, iWER, iCER) need no model and run in seconds. Caption metrics
    (FENSE, DATE) load their sentence models; a score made with substitutes is marked.

    Examples:

      xares score runs/mel-1a2b3c4d5e6f-demo-demo

      xares score RUN --sbert ./paraphrase-TinyBERT-L6-v2 --echecker none
    """
    if not run_dir.is_dir():
        raise XaresError(f"{run_dir}: no such folder; `xares runs` lists the run dirs under ./runs")
    from xares_llm.scoring.score import score_run

    add_config_dirs(config_dir)

    print_scores(score_run(run_dir, metric_options(sbert, echecker, cache)), run_dir)
