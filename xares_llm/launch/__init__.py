"""Launchers: `xares run` and `xares extract` as scheduler jobs, through submitit.

::

    settings.py  cluster settings from flags or a YAML profile (partition, account, time, GPUs, ...)
    plan.py      the jobs of a launch: an extraction array, one training + evaluation per seed, a summary
    sbatch.py    the same plan as plain sbatch scripts (`--dry-run`), for people who do not use submitit
    jobs.py      what each job runs: library calls, the same as `xares extract --slice` and `xares run`
    submit.py    submission through submitit, dependencies, following, resubmission of killed jobs
    state.py     `<group>/jobs/jobs.json`: every submitted job and its outcome (`xares jobs`)

This package imports the library, never the CLI; submitit is an optional extra (`xares-llm[slurm]`).
"""
