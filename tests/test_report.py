"""`xares report` on two small scored runs: every export and figure is written, readable and not blank."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess

import numpy as np
import pytest
from typer.testing import CliRunner

from xares_llm.cli.console import out
from xares_llm.cli.main import app
from xares_llm.cli.render import scores_table
from xares_llm.lalm.runs import LOG_FILE
from xares_llm.scoring.baselines import BASELINES
from xares_llm.scoring.predictions import predictions_path, write_predictions
from xares_llm.scoring.score import score_run

NOTES = ["do", "re", "mi", "fa", "sol", "la", "si", "do2"]
EVENTS = ["beep", "noise", "chirp", "click", "hum"]
ESC = ["dog", "rain", "sea waves", "crying baby", "clock tick", "sneezing"]
CLIPS = 60


def noisy(truth: str, choices: list[str], quality: float, rng: np.random.Generator) -> str:
    return truth if rng.random() < quality else str(rng.choice(choices))


def make_run(path, quality: float, seed: int):
    """A scored run with one task per metric kind (accuracy, mAP, iWER) and a training log."""
    rng = np.random.default_rng(seed)
    truth = np.random.default_rng(0)  # the same test set in both runs
    tasks = {
        "demo_pitch": [(n, noisy(n, NOTES, quality, rng)) for n in truth.choice(NOTES, CLIPS)],
        "esc50": [(c, noisy(c, ESC, quality, rng)) for c in truth.choice(ESC, CLIPS)],
        "demo_events": [],
        "demo_melody": [],
    }
    for _ in range(CLIPS):
        labels = ";".join(sorted(truth.choice(EVENTS, int(truth.integers(1, 3)), replace=False)))
        tasks["demo_events"].append((labels, labels if rng.random() < quality else str(rng.choice(EVENTS))))
        words = list(truth.choice(NOTES, int(truth.integers(2, 9))))
        hyp = [w if rng.random() < quality else str(rng.choice(NOTES)) for w in words]
        tasks["demo_melody"].append((" ".join(words), " ".join(hyp)))
    for task, pairs in tasks.items():
        rows = [
            {"task": task, "key": f"{task}-{i}", "prediction": p, "references": [r]} for i, (r, p) in enumerate(pairs)
        ]
        write_predictions(predictions_path(path, task), rows)
    with (path / LOG_FILE).open("w") as log:
        for step in range(1, 61):
            entry = {"step": step, "loss": 3 * np.exp(-step / 20) + 0.1 * rng.random(), "lr": 1e-3, "grad_norm": 1.0}
            entry["task_loss"] = {"demo_pitch": entry["loss"] * 1.2, "esc50": entry["loss"] * 0.8}
            log.write(json.dumps(entry) + "\n")
    score_run(path)
    return path


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("report")
    return make_run(base / "weak", 0.5, 1), make_run(base / "strong", 0.85, 2)


def png_pixels(path) -> np.ndarray:
    from matplotlib.image import imread

    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", path
    return imread(path)


def test_report_writes_md_csv_html_and_figures(two_runs, tmp_path, monkeypatch):
    monkeypatch.setattr(out, "_width", 250)
    weak, strong = two_runs
    result = CliRunner().invoke(app, ["report", str(weak), str(strong), "--out", str(tmp_path), "--baselines"])
    assert result.exit_code == 0, result.output
    assert "strong − weak" in result.output and "mean A (1 task)" in result.output

    figures = sorted((tmp_path / "figures").glob("*.png"))
    names = {f.name for f in figures}
    assert {"scores_A.png", "scores_demo.png", "loss_0.png", "loss_1.png"} <= names
    assert {"confusion_0_esc50.png", "confusion_1_demo_pitch.png", "length_0_demo_melody.png"} <= names
    for figure in figures:
        pixels = png_pixels(figure)
        assert pixels.shape[0] >= 200 and pixels.shape[1] >= 300, figure.name
        assert pixels[..., :3].std() > 0.05, f"{figure.name} looks blank"

    rows = {r["task"]: r for r in csv.DictReader((tmp_path / "report.csv").open())}
    esc = rows["esc50"]
    assert float(esc["weak_ci_low"]) <= float(esc["weak"]) <= float(esc["weak_ci_high"])
    assert float(esc["difference_ci_low"]) > 0  # 0.85 vs 0.5 on 60 clips: the paired interval excludes 0
    assert float(esc["Dasheng-Base"]) == BASELINES["Dasheng-Base"]["esc50"]
    assert float(esc["challenge_best"]) == 0.935
    # a one-task track A: the baseline mean is that task's score, not the published 15-task mean
    assert float(rows["mean A (1 task)"]["Whisper-Base"]) == pytest.approx(BASELINES["Whisper-Base"]["esc50"])
    assert rows["mean demo (3 tasks)"]["kind"] == "mean" and rows["overall (4 tasks)"]["kind"] == "overall"

    md = (tmp_path / "report.md").read_text()
    assert "| demo_melody | demo | music | iwer |" in md and "1000 resamples" in md
    html = (tmp_path / "report.html").read_text()
    assert html.count("data:image/png;base64,") == len(figures)
    assert "http://" not in html and "https://" not in html


CHECK_IMAGES = """<script>
window.addEventListener("load", () => {
  const images = Array.from(document.images);
  const loaded = images.filter((i) => i.complete && i.naturalWidth > 0).length;
  document.body.setAttribute("data-images", loaded + "/" + images.length);
});
</script></body>"""


def test_html_opens_in_a_headless_browser_with_every_image(two_runs, tmp_path):
    browser = next(
        (shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)), None
    )
    if browser is None:
        pytest.skip("no chromium binary on PATH (apt-get install chromium)")
    result = CliRunner().invoke(app, ["report", *map(str, two_runs), "--out", str(tmp_path), "--format", "html"])
    assert result.exit_code == 0, result.output
    page = tmp_path / "check.html"
    html = (tmp_path / "report.html").read_text()
    page.write_text(html.replace("</body>", CHECK_IMAGES))
    n_images = html.count("<img ")
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=10000", "--dump-dom"]
    dom = subprocess.run(
        [browser, *flags, page.as_uri()], capture_output=True, text=True, timeout=120, check=True
    ).stdout
    assert f'data-images="{n_images}/{n_images}"' in dom, dom[-2000:]
    assert n_images >= 6


def test_intervals_are_reproducible_and_seeded(two_runs):
    weak, _ = two_runs
    runner = CliRunner()
    first = runner.invoke(app, ["report", str(weak), "--seed", "3"]).output
    assert first == runner.invoke(app, ["report", str(weak), "--seed", "3"]).output
    assert first != runner.invoke(app, ["report", str(weak), "--seed", "4"]).output


def test_report_refuses_unscored_dirs_in_one_line(tmp_path):
    write_predictions(predictions_path(tmp_path / "run", "esc50"), [])
    result = CliRunner().invoke(app, ["report", str(tmp_path / "run")])
    assert result.exit_code == 1
    assert "no scores.json" in result.output and "xares score" in result.output
    result = CliRunner().invoke(app, ["report", str(tmp_path / "run"), "--format", "pdf"])
    assert result.exit_code == 1 and "--format" in result.output


def test_scores_table_baseline_means_cover_the_scored_tasks_only(two_runs, monkeypatch):
    """`xares run --tasks esc50` prints baselines beside a one-task mean: they must be one-task means too."""
    monkeypatch.setattr(out, "_width", 200)
    scores = score_run(two_runs[0])
    with out.capture() as captured:
        out.print(scores_table(scores, BASELINES))
    mean_a = next(line for line in captured.get().splitlines() if "mean A" in line)
    assert f"{BASELINES['Dasheng-Base']['esc50']:.3f}" in mean_a
    assert f"{BASELINES['Dasheng-Base']['track_A']:.3f}" not in mean_a
