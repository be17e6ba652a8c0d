"""Numbers shared across the toolkit, named once (units in every name or comment)."""

SAMPLE_RATE = 16_000  # Hz: every encoder sees mono audio at this rate
WINDOW_SECONDS = 30.0  # seconds of audio per training crop (reference recipe)
DEFAULT_BATCH_SECONDS = 240.0  # seconds of padded audio per extraction batch
TRACK_MIXTURES = {"A": "task1", "B": "task2", "all": "all"}  # the mixture each track trains on
DOWNLOAD_WORKERS = 4  # shards downloaded at once
SPLITS = ("train", "test")  # the splits of every task
