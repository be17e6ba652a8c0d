"""Audio in: shards, their sources and download, decoding to mono 16 kHz, the offline demo's data."""
