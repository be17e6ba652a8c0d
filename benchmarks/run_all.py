"""Run every benchmark, write benchmarks/results/<name>.json and a Markdown summary of them all.

    python benchmarks/run_all.py            # the full sizes (an hour or more on 2 CPU cores)
    python benchmarks/run_all.py --quick    # small sizes, under 10 minutes on 2 CPU cores

Each benchmark runs in its own process (no warm state carried from one to the next); a failing
one is reported in the summary and makes the exit status 1, the others still run.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS = (
    "encoder_speed",
    "extract_overhead",
    "extract_scaling",
    "train_step",
    "caption_metrics",
    "storage",
    "remote_store",
    "probe",
    "busy_machine",
)


def run(name: str, out_dir: Path, quick: bool) -> tuple[bool, float, float]:
    """(succeeded, wall seconds, CPU seconds of the benchmark's process) of one benchmark."""
    command = [sys.executable, "-m", f"benchmarks.{name}", "--out", str(out_dir / f"{name}.json")]
    command += ["--quick"] if quick else []
    print(f"== {name}: {' '.join(command[1:])}", flush=True)
    start, cpu = time.perf_counter(), _children_cpu()
    done = subprocess.run(command, cwd=ROOT, check=False)
    return done.returncode == 0, time.perf_counter() - start, _children_cpu() - cpu


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def cell(stats: dict | None) -> str:
    if not stats:
        return ""
    return f"{stats['median']:.3f} ± {stats['iqr'] / 2:.3f}"


def ratio_cell(r: dict) -> str:
    text = f"{r['value']:.3f} (±{r['approx_iqr'] / 2:.3f})"
    return f"**measurement error**: {text}" if "measurement_error" in r else text


def cpu_ratio(numerator: dict, denominator: dict) -> str:
    """Ratio of median process CPU times: on a contended machine it still measures the work done."""
    return f"{numerator['median'] / denominator['median']:.3f}"


def summarise(results: dict[str, dict]) -> list[str]:
    """Markdown sections, one per benchmark JSON: medians ± half the IQR, ratios with their flags."""
    lines = []
    if "encoder_speed" in results:
        lines += ["## encoder_speed (`xares bench`, CPU fp32)", ""]
        columns = "encoder | duration s | batch | clips/s | x real time | wall s (IQR) | CPU s | peak RSS MB | frames/s"
        lines += [f"| {columns} | dim |"]
        lines += ["|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for r in results["encoder_speed"]["results"]:
            for p in r["points"]:
                lines.append(
                    f"| {r['name']} | {p['duration_s']:g} | {p['batch_size']} | {p['clips_per_s']:.2f} | "
                    f"{p['x_realtime']:.1f} | {p['wall_s']:.3f} ({p['wall_iqr_s']:.3f}) | {p['cpu_s']:.3f} | "
                    f"{p['peak_memory_mb']:.0f} | "
                    f"{p['frame_rate_hz']:.1f} | {p['output_dim']} |"
                )
        lines.append("")
    if "extract_overhead" in results:
        lines += ["## extract_overhead (extract wall / bare forward wall)", ""]
        lines += ["| encoder | audio s | bare forward s | extract s | wall ratio | CPU ratio | load avg |"]
        lines += ["|---|---:|---:|---:|---:|---:|---|"]
        for r in results["extract_overhead"]["results"]:
            cpu = cpu_ratio(r["extract"]["cpu_s"], r["bare_forward"]["cpu_s"])
            lines.append(
                f"| {r['encoder']} | {r['audio_seconds']} | {cell(r['bare_forward']['wall_s'])} | "
                f"{cell(r['extract']['wall_s'])} | {ratio_cell(r['ratio'])} | {cpu} | "
                f"{r['load_average']['before'][0]} → {r['load_average']['after'][0]} |"
            )
        lines.append("")
    if "extract_scaling" in results:
        r = results["extract_scaling"]
        lines += [f"## extract_scaling (`mel`, peak memory per shard size, window {r['window_seconds']:g} s)", ""]
        lines += ["| shard | clips | audio s | peak RSS MB | vs 1x | profile peak MB | x real time | wall s | CPU s |"]
        lines += ["|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for mode, m in r["extraction"]["modes"].items():
            flag = " **measurement error**" if "measurement_error" in m else ""
            lines.append(
                f"| {mode}{flag} | {m['clips']} | {m['audio_s']:g} | {cell(m['peak_rss_mb'])} | "
                f"{m['peak_rss_vs_1x']:.3f} | {cell(m['peak_memory_mb'])} | {cell(m['x_realtime'])} | "
                f"{cell(m['wall_s'])} | {cell(m['cpu_s'])} |"
            )
        worst, met = r["extraction"]["worst_peak_rss_difference"], r["extraction"]["goal_met"]
        t = r["train_loader"]
        lines += [
            "",
            f"Worst peak RSS difference from 1x: {worst:.1%} (goal 10 %: {'met' if met else 'not met'}).",
            f"Train loader, {t['tasks']} tasks, {t['num_workers']} workers, {t['steps']} steps: process tree peak "
            f"PSS {cell(t['tree_peak_pss_mb'])} MB, summed RSS {cell(t['tree_peak_rss_mb'])} MB, "
            f"main process {cell(t['peak_rss_mb'])} MB.",
            "",
        ]
    if "train_step" in results:
        llm = results["train_step"]["results"][0].get("llm", "SmolLM2-135M-sized")
        lines += [f"## train_step (seconds per step, {llm} LLM, batch 4)", ""]
        columns = "encoder | llm only | cached | online | cached / llm only (CPU) | online / cached (CPU) | resolved"
        lines += [f"| {columns} | load avg |"]
        lines += ["|---|---:|---:|---:|---:|---:|---|---|"]
        for r in results["train_step"]["results"]:
            w, c = r["wall_s"], r["cpu_s"]
            lines.append(
                f"| {r['encoder']} | {cell(w['llm_only'])} | {cell(w['cached'])} | {cell(w['online'])} | "
                f"{ratio_cell(r['cached_over_llm_only'])} ({cpu_ratio(c['cached'], c['llm_only'])}) | "
                f"{ratio_cell(r['online_over_cached'])} ({cpu_ratio(c['online'], c['cached'])}) | "
                f"{'yes' if r['online_vs_cached_resolved'] else 'no'} | "
                f"{r['load_average']['before'][0]} → {r['load_average']['after'][0]} |"
            )
        lines.append("")
    if "caption_metrics" in results:
        r = results["caption_metrics"]
        lines += [f"## caption_metrics ({r['pairs']} pairs, {r['sbert']}, echecker {r['echecker']})", ""]
        lines += ["| step | wall s | CPU s |", "|---|---:|---:|"]
        for name in ("fense", "date"):
            lines.append(f"| {name} | {cell(r[name]['wall_s'])} | {cell(r[name]['cpu_s'])} |")
        target = r["fense_plus_date_at_target"]
        lines += [f"| FENSE + DATE at 20 000 pairs ({target['how']}) | {target['wall_s']} | {target['cpu_s']} |", ""]
    if "probe" in results:
        r = results["probe"]
        lines += [f"## probe (`xares probe` vs `xares train` + `eval`, {r['lalm_steps']} LALM steps)", ""]
        lines += ["| variant | probe s | train + eval s | probe / LALM |", "|---|---:|---:|---:|"]
        for v in r["variants"]:
            lines.append(
                f"| {v['variant']} | {v['probe_s']['cold']} | {v['lalm_s']['total']} | {v['probe_over_lalm']} |"
            )
        rho = r["spearman_probe_vs_lalm"]
        lines += ["", f"Goal {r['goal']}; Spearman probe vs LALM over variant means: {rho['variant_means']}.", ""]
    if "busy_machine" in results:
        r = results["busy_machine"]
        lines += [f"## busy_machine (`{r.get('command', 'xares demo')}`, idle vs beside CPU load)", ""]
        lines += ["| idle s | busy s | busy / idle | background processes | goal met |", "|---:|---:|---:|---:|---|"]
        lines.append(
            f"| {r['idle_seconds']} | {r['busy_seconds']} | {r['busy_over_idle']} | {r['background_processes']} | "
            f"{'yes' if r['goal_met'] else 'no'} |"
        )
        lines.append("")
    if "remote_store" in results:
        r = results["remote_store"]
        lines += [f"## remote_store (read {r['clips']} clips of {r['splits']} splits; file:// URL vs local)", ""]
        lines += ["| mode | wall s | CPU s |", "|---|---:|---:|"]
        for mode, t in r["timings"].items():
            lines.append(f"| {mode} | {cell(t['wall_s'])} | {cell(t['cpu_s'])} |")
        lines += [
            "",
            f"cold / warm {ratio_cell(r['cold_over_warm'])}, warm / local {ratio_cell(r['warm_over_local'])}, "
            f"second epoch / local {ratio_cell(r['epoch2_over_local'])}; {r['fetches_cold']} files fetched cold, "
            f"load avg {r['load_average']['before'][0]} → {r['load_average']['after'][0]}",
            "",
        ]
    if "storage" in results:
        lines += storage_lines(results["storage"])
    return lines


def storage_lines(r: dict) -> list[str]:
    """Bytes per audio hour and demo scores per store dtype (benchmarks/storage.py)."""
    demo = r["demo"]
    tasks = list(demo["scores"]["float16"])
    lines = [f"## storage (store bytes per dtype; demo {demo['steps']} steps{', --quick' if r['quick'] else ''})", ""]
    head = "dtype | " + " | ".join(f"{e['encoder']} MB/audio h (x float16)" for e in r["encoders"])
    lines += [f"| {head} | write+read s (mel) | {' | '.join(tasks)} | goal met |"]
    lines += ["|---" * (2 + len(r["encoders"]) + len(tasks)) + "|---|"]
    for dtype, v in r["verdict"]["per_dtype"].items():
        sizes = " | ".join(
            f"{e['dtypes'][dtype]['mb_per_audio_hour']:.1f} ({e['dtypes'][dtype]['ratio_to_float16']:.3f})"
            for e in r["encoders"]
        )
        scores = " | ".join(f"{demo['scores'][dtype][t]:.3f}" for t in tasks)
        lines.append(
            f"| {dtype} | {sizes} | {cell(r['encoders'][0]['dtypes'][dtype]['write_read_s']['wall_s'])} | {scores} | "
            f"{'yes' if v['goal_met'] else 'no'} (max diff {v['max_score_diff']:.3f}) |"
        )
    met = ", ".join(r["verdict"]["goal_met_by"]) or "none"
    floor = r["verdict"].get("float32_vs_float16")
    noise = f" float32 vs float16 (float16 rounding only) differ by up to {floor:.3f}." if floor is not None else ""
    return [*lines, "", f"Goal: {r['goal']}; met by: {met}.{noise}", ""]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes: under 10 minutes on 2 CPU cores")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--only", default=",".join(BENCHMARKS), help="comma list of benchmarks to run")
    parser.add_argument("--summary-only", action="store_true", help="rebuild summary.md from the JSON files there")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    chosen = [b.strip() for b in args.only.split(",") if b.strip()]
    unknown = sorted(set(chosen) - set(BENCHMARKS))
    if unknown:
        parser.error(f"unknown benchmark(s) {unknown}; choose from {', '.join(BENCHMARKS)}")
    status, results = {}, {}
    started, started_cpu = time.perf_counter(), _children_cpu()
    for name in chosen:
        path = args.out / f"{name}.json"
        if args.summary_only:
            status[name] = "from the existing JSON" if path.is_file() else "no JSON"
            results |= {name: json.loads(path.read_text())} if path.is_file() else {}
            continue
        ok, seconds, cpu = run(name, args.out, args.quick)
        status[name] = f"{'ok' if ok else 'FAILED'} in {seconds:.0f} s wall, {cpu:.0f} s CPU"
        if ok and path.is_file():
            results[name] = json.loads(path.read_text())
    machine = next(iter(results.values()), {}).get("machine", {})
    lines = [
        f"# Benchmarks{' (--quick)' if args.quick else ''}",
        "",
        f"Machine: {machine.get('platform', '?')}, {os.cpu_count()} CPUs, torch threads {machine.get('torch_threads')}"
        + ("" if args.summary_only else f"; total {time.perf_counter() - started:.0f} s wall, ")
        + ("" if args.summary_only else f"{_children_cpu() - started_cpu:.0f} s CPU")
        + ". Cells: median ± half the interquartile range; wall far above CPU / cores means other load.",
        "",
        *(f"- {name}: {text}" for name, text in status.items()),
        "",
        *summarise(results),
    ]
    (args.out / "summary.md").write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out / 'summary.md'}")
    sys.exit(0 if all(s.startswith(("ok", "from")) for s in status.values()) else 1)


if __name__ == "__main__":
    main()
