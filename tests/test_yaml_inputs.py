"""Every YAML the toolkit reads (configs, a run dir's snapshots) is plain, bounded data, or one line naming it."""

from __future__ import annotations

import dataclasses
import json
import random

import pytest
import yaml
from faults import local_task
from typer.testing import CliRunner

from xares_llm.cli.main import app
from xares_llm.config import MAX_QUOTE_CHARS, read_yaml
from xares_llm.errors import ConfigError
from xares_llm.lalm.recipe import load_recipe
from xares_llm.lalm.runs import RECIPE_FILE, STATE_FILE, WEIGHTS_FILE, RunInfo, checkpoint_dir, write_run
from xares_llm.tasks.schema import load_mixture, load_task
from xares_llm.tasks.snapshots import MIXTURE_FILE

BOMB = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n' + "".join(
    f"{n}: &{n} [*{p},*{p},*{p},*{p},*{p},*{p},*{p},*{p},*{p}]\n" for p, n in zip("abcdef", "bcdefg", strict=True)
)
PYTHON_TAG = "name: x\nllm: !!python/object/apply:os.system ['touch {marker}']\n"


def error_lines(result) -> list[str]:
    return [line for line in result.output.splitlines() if line.startswith("error:")]


def test_an_alias_bomb_is_refused_in_one_short_line(tmp_path):
    path = tmp_path / "bomb.yaml"
    path.write_text("dataset: x\n" + BOMB)
    with pytest.raises(ConfigError) as raised:
        load_task(str(path))
    message = str(raised.value)
    assert "aliases (*name) are not allowed" in message and str(path) in message
    assert len(message) < 2 * MAX_QUOTE_CHARS + len(str(path)) and "\n" not in message


def test_a_long_bad_value_is_quoted_short(tmp_path):
    data = local_task("t", ["a.tar"], ["b.tar"]).model_dump(mode="json")
    data["metric"]["name"] = "x" * 100_000
    path = tmp_path / "t.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError) as raised:
        load_task(str(path))
    assert len(str(raised.value)) < 1000


def test_a_non_utf8_task_yaml_is_one_line(tmp_path):
    path = tmp_path / "latin.yaml"
    path.write_bytes("name: caf\xe9\ndataset: x\n".encode("latin-1"))
    with pytest.raises(ConfigError, match=r"latin.yaml: not UTF-8 text"):
        load_task(str(path))


@pytest.mark.parametrize("weight", [".nan", ".inf", "-.inf"])
def test_a_mixture_weight_must_be_finite(tmp_path, weight):
    path = tmp_path / "m.yaml"
    path.write_text(f"name: m\nweights: {{demo_pitch: {weight}}}\nevaluate: [demo_pitch]\n")
    with pytest.raises(ConfigError, match="finite number"):
        load_mixture(str(path))


def test_a_negative_seed_is_one_line(tmp_path):
    args = ["train", "mel", "--mixture", "demo", "--recipe", "demo", "--set", "seed=-1"]
    result = CliRunner().invoke(app, [*args, "--cache", str(tmp_path / "cache"), "--run-dir", str(tmp_path / "r")])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert len(error_lines(result)) == 1 and "field 'seed'" in error_lines(result)[0]


def a_run_dir(tmp_path, recipe: str, mixture: str):
    run_dir = tmp_path / "run"
    info = RunInfo("mel-x", "mel", "demo", {"demo_pitch": 1.0}, ["demo_pitch"], 64, 100.0, 10, cache_root=str(tmp_path))
    write_run(run_dir, info)
    (run_dir / RECIPE_FILE).write_text(recipe)
    (run_dir / MIXTURE_FILE).write_text(mixture)
    step = checkpoint_dir(run_dir, 10)
    step.mkdir(parents=True)
    for name in (WEIGHTS_FILE, STATE_FILE):
        (step / name).write_bytes(b"")  # never read: the recipe is refused first
    assert json.loads((run_dir / "run.json").read_text()) == dataclasses.asdict(info)
    return run_dir


@pytest.mark.parametrize("where", ["recipe", "mixture and task"])
def test_a_python_tag_in_a_received_run_dir_is_one_line_and_runs_nothing(tmp_path, where):
    marker = tmp_path / "ran"
    tagged = PYTHON_TAG.format(marker=marker)
    plain = "name: m\nweights: {demo_pitch: 1}\nevaluate: [demo_pitch]\n"
    run_dir = a_run_dir(
        tmp_path,
        tagged if where == "recipe" else load_recipe("demo").to_yaml(),
        tagged if where != "recipe" else plain,
    )
    if where != "recipe":
        (run_dir / "tasks").mkdir()
        (run_dir / "tasks" / "demo_pitch.yaml").write_text(tagged)  # what eval reads
    for command in (["train", str(run_dir)], ["eval", str(run_dir), "--allow-unfinished"]):
        result = CliRunner().invoke(app, command)
        assert result.exit_code == 1, result.output
        assert "Traceback" not in result.output and len(error_lines(result)) == 1, result.output
        assert "not valid YAML" in error_lines(result)[0] and "python/object" in error_lines(result)[0]
    assert not marker.exists()


def test_fuzz_yaml_configs_are_data_or_one_line(tmp_path):
    """Random edits of a real task YAML: a ConfigError of one bounded line, or a mapping; nothing else."""
    seed = yaml.safe_dump(local_task("t", ["a.tar"], ["b.tar"]).model_dump(mode="json")).encode()
    tokens = [b"&a ", b"*a", b"!!python/name:os.system", b"!!binary ", b"\xff", b"{", b"[", b": ", b"\n- ", b".nan"]
    rng = random.Random(6)
    path = tmp_path / "f.yaml"
    for _ in range(400):
        data = bytearray(seed)
        for _ in range(rng.randrange(1, 4)):
            at = rng.randrange(len(data) + 1)
            if rng.random() < 0.5:
                data[at:at] = rng.choice(tokens)
            else:
                del data[at : at + rng.randrange(1, 12)]
        path.write_bytes(bytes(data))
        try:
            assert isinstance(read_yaml(path), dict)
            load_task(str(path))
        except ConfigError as e:
            assert "\n" not in str(e) and len(str(e)) < 3000, str(e)
