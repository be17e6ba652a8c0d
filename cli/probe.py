"""`xares probe`: proxy scores in minutes from the feature cache (light heads, no LLM, no audio)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from xares_llm.cli.console import Listing, err, out, print_json
from xares_llm.cli.options import AutoDeviceOpt, CacheOpt, EncoderArgsOpt, JsonOpt, read_cache
from xares_llm.cli.score import EcheckerOpt, SbertOpt, metric_options

if TYPE_CHECKING:
    from xares_llm.probe.outputs import ProbeResults


def default_out_dir(encoder_id: str, tasks: str) -> Path:
    label = "+".join(Path(n.strip()).stem for n in tasks.split(",") if n.strip())
    return Path("probes") / f"{encoder_id}-{label}"


def probe(
    encoder: Annotated[
        str, typer.Argument(help="An encoder spec, or the id (or unique id prefix) of a store in the cache.")
    ],
    tasks: Annotated[
        str, typer.Option("--tasks", help="Tasks or mixtures: task1, task2, all, demo, names, YAML paths.")
    ],
    heads: Annotated[
        str, typer.Option("--heads", help="Heads: linear, mlp, knn (classification, captioning), ctc (ASR).")
    ] = "linear,mlp,knn,ctc",
    pooling: Annotated[
        str, typer.Option("--pooling", help="Clip embedding: mean, or meanstd (mean and std concatenated).")
    ] = "mean",
    seed: Annotated[int, typer.Option("--seed", help="Seed of the held-out slice and every head.")] = 0,
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Output dir \\[default: probes/<encoder-id>-<tasks>].")
    ] = None,
    cache: CacheOpt = None,
    encoder_args: EncoderArgsOpt = None,
    device: AutoDeviceOpt = None,
    sbert: SbertOpt = None,
    echecker: EcheckerOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Probe tasks with light heads on the stored features: minutes, not GPU-days.

    Classification: linear, MLP and kNN on pooled clip embeddings; ASR: a small CTC head on the
    frames; captioning: the caption of the nearest train clip. Each task is scored with its own
    metric. Probe scores rank encoders; they are not LALM scores.

    Examples:

      xares probe mel --tasks demo

      xares probe whisper-base-1a2b3c --tasks task1 --heads linear,knn --device cuda

      xares probe mel --tasks clotho --sbert ./paraphrase-TinyBERT-L6-v2 --echecker none
    """
    from xares_llm.probe.outputs import parse_heads

    chosen = parse_heads(heads)  # before torch loads
    from xares_llm.probe.runner import ProbeOptions
    from xares_llm.probe.runner import probe as run_probe
    from xares_llm.stores import resolve_store
    from xares_llm.tasks.schema import resolve_tasks

    cache_root = read_cache(cache)
    configs = resolve_tasks(tasks)
    encoder_id, spec = resolve_store(cache_root, encoder, encoder_args)
    out_dir = out_dir or default_out_dir(encoder_id, tasks)
    err.print(f"probe {out_dir}: encoder {encoder_id}, {len(configs)} tasks, heads {','.join(chosen)}")
    options = ProbeOptions(chosen, pooling, seed, device, metric_options(sbert, echecker, cache_root))
    with err.status("probing") as status:
        results = run_probe(cache_root, encoder_id, spec, configs, out_dir, options, status.update)
    for why in results.skipped.values():
        err.print(f"[yellow]skipped[/yellow] {why}", highlight=False, soft_wrap=True)
    if as_json:
        print_json(results.to_dict())
        return
    out.print(probe_table(results))
    out.print(f"wrote {out_dir / 'probe_scores.json'}; rescore a head with: xares score {out_dir / '<head>'}")


def probe_table(results: ProbeResults) -> Listing:
    """One row per task with each head's score, then track means beside the reference LALM's published ones."""
    from xares_llm.probe.outputs import NOTE
    from xares_llm.scoring.baselines import BASELINES

    heads = [h for h in results.heads if any(h in p.heads for p in results.tasks.values())]
    table = Listing(title=f"Probe scores ({results.encoder_id}) - not LALM scores", title_justify="left")
    for column in ("task", "track", "metric", "test clips"):
        table.add_column(column)
    for head in heads:
        table.add_column(head, justify="right", style="bold")
    keys = [*results.tasks, *(f"track_{t}" for t in results.tracks())]
    shown = {name: b for name, b in BASELINES.items() if any(b.get(k) is not None for k in keys)}  # no empty columns
    for name in shown:
        table.add_column(f"LALM\n{name}", justify="right", style="dim")
    for probe in results.tasks.values():
        scores = [_cell(probe.heads[h].score, h == probe.primary) if h in probe.heads else "" for h in heads]
        baselines = [_cell(b.get(probe.task)) for b in shown.values()]
        table.add_row(probe.task, probe.track, probe.metric, str(probe.n_test), *scores, *baselines)
    table.add_section()
    per_head = results.head_tracks()
    for track, mean in results.tracks().items():
        scores = [_cell(per_head.get(h, {}).get(track)) for h in heads]
        baselines = [_cell(b.get(f"track_{track}")) for b in shown.values()]
        table.add_row(f"mean {track}", track, "", "", *scores, *baselines)
        table.add_row(f"mean {track} (primary heads)", track, "", "", f"{mean:.3f}", *[""] * (len(heads) - 1))
    lalm = "; the LALM columns are the reference system's published scores, for orientation only" if shown else ""
    table.caption = (
        f"{NOTE}{lalm}.\n"
        "^ the task's primary head (MLP, else linear, else kNN, else CTC), whose scores make the primary means."
    )
    table.caption_justify = "left"
    return table


def _cell(value: float | None, primary: bool = False) -> str:
    return "" if value is None else f"{value:.3f}{' ^' if primary else ''}"
