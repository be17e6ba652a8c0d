"""Encoder precision: fp32 (the reference) unless fp16/bf16 autocast is asked for; part of the encoder-id
and recorded in encoder.json, so features computed at another precision never share a store."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from xares_llm.cache import EncoderInfo, SourceInfo, read_encoder_info
from xares_llm.cache.dtypes import STORE_DTYPES
from xares_llm.cache.format import ENCODER_PRECISIONS
from xares_llm.cli.main import app
from xares_llm.encoders.describe import candidate_ids, prepare_encoder
from xares_llm.errors import EncoderError, StoreError
from xares_llm.extract.decode import DecodedWindow
from xares_llm.extract.encode import Extractor
from xares_llm.extract.run import extract
from xares_llm.lalm.train import resolve_store
from xares_llm.tasks.schema import load_task


def test_default_is_fp32_and_each_precision_has_its_own_id():
    default = prepare_encoder("mel", None, "cpu", "float16")[1]
    infos = {p: prepare_encoder("mel", None, "cpu", "float16", p)[1] for p in ENCODER_PRECISIONS}
    assert default.encoder_precision == "fp32" and default.encoder_id == infos["fp32"].encoder_id
    assert len({info.encoder_id for info in infos.values()}) == len(ENCODER_PRECISIONS) == 3
    assert [infos[p].encoder_precision for p in ENCODER_PRECISIONS] == ["fp32", "fp16", "bf16"]
    ids = candidate_ids("mel", None)  # what `xares train mel` looks for
    assert ids[0] == default.encoder_id and {i.encoder_id for i in infos.values()} <= set(ids)
    assert len(ids) == len(set(ids)) == 2 * len(ENCODER_PRECISIONS) * len(STORE_DTYPES)  # resampler x precision x dtype


def test_invalid_precision_is_refused_with_the_allowed_values():
    with pytest.raises(EncoderError, match=r"^--encoder-precision must be one of fp32, fp16, bf16 .*got 'fp8'$"):
        prepare_encoder("mel", None, "cpu", "float16", "fp8")


@pytest.mark.parametrize("device", ["cpu", "cuda"])
def test_autocast_is_used_only_when_asked(device):
    """A float16 store once implied fp16 autocast on CUDA; now only the encoder precision decides."""
    loaded, fp32 = prepare_encoder("mel", None, "cpu", "float16")
    _, fp16 = prepare_encoder("mel", None, "cpu", "float16", "fp16")
    _, bf16 = prepare_encoder("mel", None, "cpu", "float32", "bf16")
    assert Extractor(loaded.module, fp32, device, 10.0).autocast_dtype is None
    assert Extractor(loaded.module, fp16, device, 10.0).autocast_dtype == torch.float16
    assert Extractor(loaded.module, bf16, device, 10.0).autocast_dtype == torch.bfloat16


def _encode_one(extractor: Extractor, clip: np.ndarray) -> np.ndarray:
    window = DecodedWindow(source=SourceInfo("x.tar", 1, "00", 0), keys=["a"], audio=[clip], meta=["{}"])
    return extractor.encode(window, None).frames[0]


def test_fp32_computes_exactly_and_autocast_changes_the_features():
    loaded, fp32 = prepare_encoder("mel", None, "cpu", "float32")
    _, bf16 = prepare_encoder("mel", None, "cpu", "float32", "bf16")
    clip = (0.1 * np.random.default_rng(0).standard_normal(16_000)).astype(np.float32)
    with torch.inference_mode():
        exact = loaded.module(torch.from_numpy(clip)[None], None)[0][0].numpy()
    np.testing.assert_array_equal(_encode_one(Extractor(loaded.module, fp32, "cpu", 10.0), clip), exact)
    autocast = _encode_one(Extractor(loaded.module, bf16, "cpu", 10.0), clip)
    assert autocast.shape == exact.shape and not np.array_equal(autocast, exact)


def test_old_encoder_json_reads_with_a_documented_precision():
    """Before the field existed, float32 stores were always fp32; float16 ones depended on the device."""
    data = json.loads(prepare_encoder("mel", None, "cpu", "float16")[1].to_json())
    del data["encoder_precision"]
    assert EncoderInfo.from_json(json.dumps(data)).encoder_precision == "unknown"
    assert EncoderInfo.from_json(json.dumps({**data, "dtype": "float32"})).encoder_precision == "fp32"


def test_train_finds_an_autocast_store_and_prefers_the_reference_one(tmp_path, demo_store):
    tasks = [load_task("demo_count")]
    autocast = extract("mel", tasks, tmp_path, demo_store.data_root, splits=["test"], precision="bf16")
    assert read_encoder_info(tmp_path, autocast.encoder_id).encoder_precision == "bf16"
    assert resolve_store(tmp_path, "mel") == (autocast.encoder_id, "mel")
    reference = extract("mel", tasks, tmp_path, demo_store.data_root, splits=["test"])
    assert reference.encoder_id != autocast.encoder_id
    assert read_encoder_info(tmp_path, reference.encoder_id).encoder_precision == "fp32"
    assert resolve_store(tmp_path, "mel") == (reference.encoder_id, "mel")  # `mel` prefixes both ids, and is a spec
    with pytest.raises(StoreError, match="encoder-id prefix 'mel-' is ambiguous"):
        resolve_store(tmp_path, "mel-")


def test_cli_encoder_precision(tmp_path, demo_store):
    args = ["extract", "mel", "--tasks", "demo_count", "--split", "test", "--cache", str(tmp_path), "--keep-nonfinite"]
    args += ["--data", str(demo_store.data_root)]
    ids = {}
    for precision in (None, "fp16"):
        result = CliRunner().invoke(app, [*args, *(["--encoder-precision", precision] if precision else [])])
        assert result.exit_code == 0, result.output
        ids[precision] = re.search(r"encoder-id (\S+)", result.output).group(1)
        assert ("not the reference setting" in result.output) == (precision is not None)
    assert ids[None] != ids["fp16"]
    assert read_encoder_info(tmp_path, ids[None]).encoder_precision == "fp32"
    assert read_encoder_info(tmp_path, ids["fp16"]).encoder_precision == "fp16"
    bad = CliRunner().invoke(app, [*args, "--encoder-precision", "half"])
    assert bad.exit_code == 1
    assert bad.output.strip().splitlines() == [
        "error: --encoder-precision must be one of fp32, fp16, bf16 (fp32 is the reference setting), got 'half'"
    ]
    help_text = CliRunner().invoke(app, ["extract", "--help"], env={"COLUMNS": "200"}).output
    assert "--encoder-precision" in help_text and "Only fp32 is the reference" in " ".join(help_text.split())
