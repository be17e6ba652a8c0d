"""How many CPU threads torch uses, chosen by the size of the work.

On a few shared cores, a team of OpenMP threads spinning on tiny matrices collapses under load:
a 100-step demo training took 406 s with torch's default threads and 31 s with one. Small models
(the demo LLM, `mel`) therefore run on one thread and large ones on every core, unless the user
says otherwise with ``--threads N`` or ``OMP_NUM_THREADS``.
"""

from __future__ import annotations

import os

import torch

SMALL_MODEL_PARAMETERS = 20_000_000  # below this, one thread beats a team of them


def choose_threads(module: torch.nn.Module | None, requested: int | None = None) -> int:
    """--threads first, then $OMP_NUM_THREADS, then one thread for a small module, else every core."""
    if requested is not None:
        return max(1, requested)
    from_env = os.environ.get("OMP_NUM_THREADS", "").strip()
    if from_env.isdigit() and int(from_env) > 0:
        return int(from_env)
    parameters = sum(p.numel() for p in module.parameters()) if module is not None else 0
    return 1 if parameters < SMALL_MODEL_PARAMETERS else (os.cpu_count() or 1)


def use_threads(module: torch.nn.Module | None, requested: int | None = None) -> int:
    """Set torch's intra-op threads for work on `module`; returns the number chosen."""
    threads = choose_threads(module, requested)
    torch.set_num_threads(threads)
    return threads
