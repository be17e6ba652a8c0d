"""xares-llm: evaluate audio encoders as the front end of an audio language model.

Data flow (docs/architecture.md)::

    WebDataset shards (HF hub or local dir)
      -> decode, mono, resample 16 kHz              audio.py        (background thread, windows of <= 600 s)
      -> length-sorted batches bounded by seconds   extract.py      (padded seconds: Whisper pads to 30 s)
      -> encoder: eval(), no_grad, fp32 by default  encoders/encoding.py
      -> trim each clip to its valid frames         encoders/encoding.py
      -> part writer (appends, renamed atomically)  cache/writer.py (background thread, one part per shard)
    => feature store <cache>/features/<encoder-id>/<dataset>/<split>/part-*.zarr
      -> mixture sampler -> random window in frames -> length-bucketed batches   sampler.py
      -> projector -> [audio | prompt | answer] -> LLM (+ LoRA) -> loss         model.py, train.py
      -> [audio | prompt] -> batched greedy generation, left-padded             evaluate.py
    => run dir: checkpoints, predictions/<task>.jsonl, scores.json             scoring.py

The public surface, one function per stage (each module is imported only when used, so the CLI
starts fast): `xares_llm.extract.extract`, `xares_llm.train.train`, `xares_llm.evaluate.evaluate`,
`xares_llm.scoring.score_run`, and `xares_llm.pipeline.run_pipeline` for all of them in a row;
`xares_llm.probe.runner.probe` scores light heads on the store instead of the LLM (minutes, a proxy).
"""

__version__ = "0.1.0"
