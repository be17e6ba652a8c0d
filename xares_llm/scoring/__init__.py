"""Score a run from its predictions: per task, per track, per clip, and against the reference."""
