"""Stage two: the audio LLM (projector + LLM + LoRA) trained and decoded from the feature store."""
