"""Numbers shared across the toolkit, named once (units in every name or comment)."""

SAMPLE_RATE = 16_000  # Hz: every encoder sees mono audio at this rate
WINDOW_SECONDS = 30.0  # seconds of audio per training crop (reference recipe)
DEFAULT_BATCH_SECONDS = 240.0  # seconds of padded audio per extraction batch
