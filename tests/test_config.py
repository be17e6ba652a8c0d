"""Config loading: errors name file, field and allowed values; overrides reach nested fields."""

from __future__ import annotations

import pytest

from xares_llm.errors import ConfigError
from xares_llm.lalm.recipe import load_recipe, parse_overrides
from xares_llm.tasks.schema import load_mixture, load_task, mixture_weights


def test_unknown_metric_names_the_choices(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text(
        "name: t\ntrack: A\ndataset: {name: t, train: [a.tar], test: [b.tar]}\n"
        "labels: {train: label, test: label}\nprompt: p\nmetric: {name: acc}\n"
    )
    with pytest.raises(ConfigError, match=r"t.yaml: field 'metric.name'.*unknown metric 'acc'; allowed: accuracy, map"):
        load_task(str(path))


def test_overrides_are_yaml_values():
    overrides = parse_overrides(["optim.lr=3e-4", "lora=null", "steps=10"])
    assert overrides == {"optim.lr": 3e-4, "lora": None, "steps": 10}
    recipe = load_recipe("reference", overrides)
    assert recipe.optim.lr == 3e-4 and recipe.lora is None and recipe.steps == 10
    assert recipe.optim.weight_decay == 0.01  # siblings keep their values
    with pytest.raises(ConfigError, match="key=value"):
        parse_overrides(["steps"])


def test_demo_mixture_weights_normalise():
    weights = mixture_weights(load_mixture("demo"))
    assert sum(weights.values()) == pytest.approx(1.0)
    assert weights["demo_melody"] == pytest.approx(1.5 / 4.5)


def test_devices_are_checked_early():
    import torch

    from xares_llm.devices import resolve_device
    from xares_llm.errors import XaresError

    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(None).type in ("cpu", "cuda")
    with pytest.raises(XaresError, match="use cpu, cuda or cuda:N"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(XaresError, match="use --device cpu"):
            resolve_device("cuda:0")
