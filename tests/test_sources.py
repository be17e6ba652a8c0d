"""Shard sources: a local mirror, and the real `huggingface_hub` download code against a fake hub.

What is real here: `hf_hub_download`, `HfApi.get_paths_info`, their metadata handling, local-dir
layout and atomic file moves, our retry/backoff and error messages, `xares download`. What is fake:
only the HTTP transport. `huggingface_hub` lets a caller supply the `httpx2.Client` it uses
(`set_client_factory`); we give it one whose transport is an `httpx2.MockTransport` answering the few
hub endpoints these calls use from bytes held in memory. Nothing touches the network.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs

import pytest

httpx2 = pytest.importorskip("httpx2")  # the HTTP client of huggingface_hub >= 1.0

from huggingface_hub import constants as hf_constants  # noqa: E402
from huggingface_hub.utils import _http as hf_http  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from xares_llm.audio.download import format_bytes, parse_splits, plan_download, run_download  # noqa: E402
from xares_llm.audio.sources import fetch_shard, shard_paths  # noqa: E402
from xares_llm.cli.main import app  # noqa: E402
from xares_llm.errors import ConfigError, DataError  # noqa: E402
from xares_llm.tasks.schema import TaskConfig  # noqa: E402

REPO = "test-org/fake-audio"
COMMIT = "0123456789abcdef0123456789abcdef01234567"


def make_task(repo: str | None, train: list[str], test: list[str], name: str = "toy") -> TaskConfig:
    return TaskConfig.model_validate(
        {
            "name": name,
            "track": "A",
            "dataset": {"name": name, "repo": repo, "train": train, "test": test},
            "labels": {"train": "label", "test": "label"},
            "prompt": "Name the toy sound.",
            "metric": {"name": "accuracy"},
        }
    )


class FakeHub:
    """The hub endpoints used by `hf_hub_download` and `get_paths_info`, served from memory.

    `fail` maps (method, path) to a list of HTTP statuses to answer before answering normally;
    `break_after` maps a path to a byte count after which its next GET body breaks off. A GET with
    a ``Range: bytes=N-`` header gets the rest of the file (206), as the hub's CDN answers.
    """

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = files
        self.fail: dict[tuple[str, str], list[int]] = {}
        self.break_after: dict[str, int] = {}
        self.requests: list[tuple[str, str]] = []
        self.ranges: list[str] = []

    def handle(self, request: httpx2.Request) -> httpx2.Response:
        path = request.url.path
        self.requests.append((request.method, path))
        resolve = f"/datasets/{REPO}/resolve/main/"
        if request.method == "POST" and path == f"/api/datasets/{REPO}/paths-info/main":
            wanted = parse_qs(request.content.decode())["paths"]
            found = [
                {"type": "file", "path": p, "size": len(self.files[p]), "oid": "0" * 40}
                for p in wanted
                if p in self.files
            ]
            return httpx2.Response(200, json=found)  # the hub leaves out paths it lacks
        if path.startswith(resolve) and request.method in ("HEAD", "GET"):
            relative = path.removeprefix(resolve)
            pending = self.fail.get((request.method, relative))
            if pending:
                return httpx2.Response(pending.pop(0), headers={"X-Repo-Commit": COMMIT})
            if relative not in self.files:
                return httpx2.Response(404, headers={"X-Error-Code": "EntryNotFound", "X-Repo-Commit": COMMIT})
            body = self.files[relative]
            headers = {"X-Repo-Commit": COMMIT, "ETag": f'"{hashlib.sha256(body).hexdigest()}"'}
            if request.method == "HEAD":
                return httpx2.Response(200, headers={**headers, "Content-Length": str(len(body))})
            start = 0
            if "Range" in request.headers:
                self.ranges.append(request.headers["Range"])
                start = int(request.headers["Range"].removeprefix("bytes=").split("-")[0])
                headers["Content-Range"] = f"bytes {start}-{len(body) - 1}/{len(body)}"
            headers["Content-Length"] = str(len(body) - start)
            status = 206 if start else 200
            if relative in self.break_after:
                return httpx2.Response(
                    status, headers=headers, content=broken(body[start:], self.break_after.pop(relative))
                )
            return httpx2.Response(status, headers=headers, content=body[start:])
        if path.startswith(f"/api/datasets/{REPO}") or path.startswith(f"/datasets/{REPO}"):
            return httpx2.Response(404, headers={"X-Error-Code": "EntryNotFound"})
        return httpx2.Response(404, headers={"X-Error-Code": "RepoNotFound"})

    def count(self, method: str, relative: str) -> int:
        return self.requests.count((method, f"/datasets/{REPO}/resolve/main/{relative}"))


def broken(body: bytes, after: int) -> Iterator[bytes]:
    """A response body that sends `after` bytes, then fails as a dropped connection does."""
    yield body[:after]
    raise httpx2.RemoteProtocolError("peer closed connection without sending complete message body")


# Three train and three test shards of a toy dataset folder, each a few distinct bytes.
SHARDS = {
    f"Toy/{split}/toy_{split}_{i:04d}.tar.gz": bytes([i]) * (1000 + i) for split in ("train", "test") for i in range(3)
}


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeHub]:
    fake = FakeHub(dict(SHARDS))
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", False)

    def client() -> httpx2.Client:
        base = hf_http.default_client_factory()  # keeps the hub's own request hook (offline mode, ids)
        return httpx2.Client(transport=httpx2.MockTransport(fake.handle), event_hooks=base.event_hooks)

    hf_http.set_client_factory(client)
    yield fake
    hf_http.set_client_factory(hf_http.default_client_factory)


def toy_task(name: str = "toy") -> TaskConfig:
    return make_task(REPO, ["Toy/train/toy_train_{0000..0002}.tar.gz"], ["Toy/test/toy_test_{0000..0002}.tar.gz"], name)


# --- local mirror -----------------------------------------------------------------------------


def test_local_mirror_found_in_order(tmp_path: Path) -> None:
    task = make_task(None, ["A/train/a_{1..3}.tar", "B/x.tar"], ["A/test/t.tar"])
    for relative in task.dataset.shards("train"):
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_bytes(b"x")
    paths = shard_paths(task, "train", tmp_path)
    assert paths == [tmp_path / p for p in ("A/train/a_1.tar", "A/train/a_2.tar", "A/train/a_3.tar", "B/x.tar")]


def test_missing_local_only_shard_is_a_clear_error(tmp_path: Path) -> None:
    task = make_task(None, ["A/train/a_1.tar"], ["A/test/t.tar"])
    with pytest.raises(DataError, match=r"shard A/test/t.tar of task 'toy' is missing under .*") as info:
        shard_paths(task, "test", tmp_path)
    assert str(tmp_path) in str(info.value) and "xares download" not in str(info.value)


def test_missing_hub_shard_without_download_points_at_xares_download(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"toy_test_0000.tar.gz .*`xares download --tasks toy`"):
        shard_paths(toy_task(), "test", tmp_path, download=False)


# --- the hub code path, against the fake transport ------------------------------------------------


def test_fetch_writes_repo_layout_and_skips_present(hub: FakeHub, tmp_path: Path) -> None:
    paths = shard_paths(toy_task(), "train", tmp_path)
    assert paths == [tmp_path / f"Toy/train/toy_train_{i:04d}.tar.gz" for i in range(3)]
    assert [p.read_bytes() for p in paths] == [SHARDS[f"Toy/train/toy_train_{i:04d}.tar.gz"] for i in range(3)]
    assert not list(tmp_path.rglob("*.incomplete"))
    before = len(hub.requests)
    assert shard_paths(toy_task(), "train", tmp_path) == paths
    assert len(hub.requests) == before  # present shards: no request at all


def test_transient_error_is_retried(hub: FakeHub, tmp_path: Path) -> None:
    relative = "Toy/train/toy_train_0001.tar.gz"
    hub.fail[("GET", relative)] = [500, 502]
    path = fetch_shard(REPO, relative, tmp_path, backoff_s=0)
    assert path.read_bytes() == SHARDS[relative]
    assert hub.count("GET", relative) == 3


def test_hub_resumes_a_broken_stream_with_range(hub: FakeHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Checks our claim that huggingface_hub resumes within one download: a stream cut after 600
    bytes is continued with ``Range: bytes=600-`` and the file is whole, without a retry of ours.

    The hub resumes from the last whole read chunk (10 MiB in real use); 100 bytes here, so the
    600 bytes received count.
    """
    monkeypatch.setattr(hf_constants, "DOWNLOAD_CHUNK_SIZE", 100)
    relative = "Toy/test/toy_test_0002.tar.gz"
    hub.break_after[relative] = 600
    path = fetch_shard(REPO, relative, tmp_path, retries=0)
    assert path.read_bytes() == SHARDS[relative]
    assert hub.ranges == ["bytes=600-"] and hub.count("GET", relative) == 2


def test_persistent_transient_error_gives_up_with_message(hub: FakeHub, tmp_path: Path) -> None:
    relative = "Toy/train/toy_train_0002.tar.gz"
    hub.fail[("GET", relative)] = [503] * 10
    with pytest.raises(DataError) as info:
        fetch_shard(REPO, relative, tmp_path, task="toy", retries=2, backoff_s=0)
    message = str(info.value)
    assert hub.count("GET", relative) == 3
    assert f"could not download {relative} from dataset repo {REPO}" in message
    assert "HTTP 503" in message and "gave up after 3 attempts" in message
    assert f"`xares download --tasks toy --data {tmp_path}`" in message
    assert f"hf download {REPO} {relative} --repo-type dataset --local-dir {tmp_path}" in message
    assert not (tmp_path / relative).exists()


def test_missing_file_fails_at_once(hub: FakeHub, tmp_path: Path) -> None:
    relative = "Toy/train/nope.tar.gz"
    with pytest.raises(DataError, match=r"nope.tar.gz from dataset repo test-org/fake-audio: the repo has no such"):
        fetch_shard(REPO, relative, tmp_path, backoff_s=0)
    assert hub.count("HEAD", relative) == 1 and hub.count("GET", relative) == 0


def test_offline_mode_is_not_retried(hub: FakeHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(DataError, match="HF_HUB_OFFLINE is set"):
        fetch_shard(REPO, "Toy/train/toy_train_0000.tar.gz", tmp_path, backoff_s=0)
    assert hub.requests == []


# --- xares download ---------------------------------------------------------------------------------


def test_plan_and_download_only_missing(hub: FakeHub, tmp_path: Path) -> None:
    present = tmp_path / "Toy/test/toy_test_0000.tar.gz"
    present.parent.mkdir(parents=True)
    present.write_bytes(SHARDS["Toy/test/toy_test_0000.tar.gz"])
    local = make_task(None, ["L/a.tar"], ["L/b.tar"], name="local")
    plan = plan_download([toy_task(), toy_task("toy_again"), local], ("train", "test"), tmp_path)
    assert len(plan.shards) == 6 and plan.local_only == ["local"]  # the same files twice count once
    assert len(plan.missing) == 5 and plan.present == [s for s in plan.shards if s.local == present]
    assert plan.bytes_missing == sum(len(b) for r, b in SHARDS.items() if r != "Toy/test/toy_test_0000.tar.gz")
    seen: list[tuple[str, int]] = []
    fetched = run_download(plan, workers=2, on_done=lambda shard, size: seen.append((shard.relative, size)))
    assert sorted(s.relative for s in fetched) == sorted(s.relative for s in plan.shards if s.local != present)
    assert sorted(seen) == sorted((r, len(b)) for r, b in SHARDS.items() if r != "Toy/test/toy_test_0000.tar.gz")
    assert all(hub.count("GET", r) == (r != "Toy/test/toy_test_0000.tar.gz") for r in SHARDS)
    assert plan.missing == [] and plan.bytes_on_disk() == sum(len(b) for b in SHARDS.values())
    assert run_download(plan) == []


def test_plan_rejects_a_file_the_repo_lacks(hub: FakeHub, tmp_path: Path) -> None:
    task = make_task(REPO, ["Toy/train/toy_train_{0000..0003}.tar.gz"], ["Toy/test/toy_test_0000.tar.gz"])
    with pytest.raises(DataError, match=r"has no file Toy/train/toy_train_0003.tar.gz \(task 'toy'\)"):
        plan_download([task], ("train",), tmp_path)
    assert not any(method == "GET" for method, _ in hub.requests)


def test_complete_mirror_plans_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", True)
    for relative, body in SHARDS.items():
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_bytes(body)
    plan = plan_download([toy_task()], ("train", "test"), tmp_path)
    assert plan.missing == [] and run_download(plan) == []


def test_parse_splits() -> None:
    assert parse_splits("test, train") == ("train", "test")
    with pytest.raises(ConfigError, match="unknown split valid: use train, test or train,test"):
        parse_splits("train,valid")
    assert format_bytes(999) == "999 B" and format_bytes(1_500_000) == "1.5 MB"


def test_xares_download_command(hub: FakeHub, tmp_path: Path) -> None:
    task_yaml = tmp_path / "toy.yaml"
    task_yaml.write_text(json.dumps(toy_task().model_dump()))  # JSON is YAML
    data = tmp_path / "data"
    result = CliRunner().invoke(app, ["download", "--tasks", str(task_yaml), "--split", "test", "--data", str(data)])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (data / "Toy/test").iterdir()) == [f"toy_test_{i:04d}.tar.gz" for i in range(3)]
    assert not (data / "Toy/train").exists()
    total = sum(len(b) for r, b in SHARDS.items() if "/test/" in r)
    assert f"3 shards, {format_bytes(total)} on disk" in result.output


def test_xares_download_reports_failure_in_one_line(hub: FakeHub, tmp_path: Path) -> None:
    task = make_task(REPO, ["Toy/train/missing_{0..1}.tar.gz"], ["Toy/test/toy_test_0000.tar.gz"])
    task_yaml = tmp_path / "toy.yaml"
    task_yaml.write_text(json.dumps(task.model_dump()))
    result = CliRunner().invoke(app, ["download", "--tasks", str(task_yaml), "--data", str(tmp_path / "d")])
    assert result.exit_code == 1
    assert "error: dataset repo test-org/fake-audio has no file Toy/train/missing_0.tar.gz" in result.output
