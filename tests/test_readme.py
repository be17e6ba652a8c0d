"""The README (then docs/*.md), executed: after `xares demo` in a temporary folder, every `xares` and
`export` line of their bash blocks runs in order and must succeed; lines marked `# needs: ...` are skipped with that
reason (README.md, Development, says how). The demo's own three "next" commands run too."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DEMO_STEPS = "40"  # the demo's pipeline end to end, in a minute instead of 1200 steps
NEEDS = re.compile(r"#\s*needs:\s*(?P<what>.*)$")


def readme_commands(text: str) -> list[tuple[str, str | None]]:
    """(command, why it is skipped or None) for each xares/export line of the bash blocks, in order."""
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        for line in block.splitlines():
            words = line.split()
            if not words or words[0] not in ("xares", "export"):
                continue
            needs = NEEDS.search(line)
            command = line.split("  #")[0].split(" # ")[0].strip()
            commands.append((command, needs.group("what").strip() if needs else None))
    return commands


def run(command: str, cwd: Path, env: dict) -> subprocess.CompletedProcess:
    """One README line as a user types it: `xares` is this checkout's CLI, globs expand as in bash."""
    words = shlex.split(command)
    expanded = [
        w for word in words[1:] for w in (sorted(map(str, cwd.glob(word))) or [word] if "*" in word else [word])
    ]
    argv = [sys.executable, "-m", "xares_llm.cli.main", *expanded]
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)


def glob(word: str, cwd: Path) -> list[str]:
    matches = sorted(str(p.relative_to(cwd)) for p in cwd.glob(word)) if "*" in word else []
    return matches or [word]


@pytest.mark.slow
def test_readme_commands_work_as_written(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("XARES_", "HF_HUB_OFFLINE"))}
    env |= {"XARES_DEMO_STEPS": DEMO_STEPS, "HF_HUB_OFFLINE": "1", "PWD": str(tmp_path), "HOME": str(tmp_path)}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    demo = run("xares demo", tmp_path, env)
    assert demo.returncode == 0, demo.stderr[-3000:]
    encoder_id = re.search(r"cache/ \(the feature store (\S+)\)", demo.stdout).group(1)
    next_lines = [line for line in demo.stdout.split("next, try:")[1].splitlines() if line.startswith("  xares ")]
    assert len(next_lines) == 3
    for line in next_lines:  # as printed, from the folder the demo ran in
        done = run(line.strip(), tmp_path, env)
        assert done.returncode == 0, f"{line.strip()}\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"

    skipped, ran = [], []
    documents = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]  # docs' examples too
    for command, needs in (c for doc in documents for c in readme_commands(doc.read_text())):
        command = command.replace("<encoder-id>", encoder_id)
        if needs:
            skipped.append(f"{command}  (needs: {needs})")
            continue
        if command.startswith("export "):
            name, _, value = command.removeprefix("export ").partition("=")
            env[name] = value.replace("$PWD", str(tmp_path))
            continue
        done = run(command, tmp_path, env)
        assert done.returncode == 0, f"README command failed: {command}\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
        ran.append(command)
    print("\n".join(["ran:", *ran, "skipped:", *skipped]))
    assert len(ran) >= 15 and all("<" not in c for c in ran)
    assert (tmp_path / "report" / "report.md").is_file() and (tmp_path / "report" / "settings.csv").is_file()


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("xares tasks                # the tasks", ("xares tasks", None)),
        ("xares run x.py --track A   # needs: your encoder, gpu", ("xares run x.py --track A", "your encoder, gpu")),
        ("pip install -e .", None),
    ],
)  # fmt: skip
def test_the_marker_convention(line, expected):
    found = readme_commands(f"```bash\n{line}\n```\n")
    assert found == ([expected] if expected else [])
