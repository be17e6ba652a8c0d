"""xares-llm: evaluate audio encoders as the front end of an audio language model.

Data flow (docs/architecture.md)::

    WebDataset shards (HF hub or local dir)                    audio/     (shards, sources, download, demo data)
      -> decode, mono, resample 16 kHz (windows of <= 600 s)   extract/decode.py, extract/decode_pipe.py (background)
      -> length-sorted batches bounded by padded seconds       extract/encode.py  (Whisper pads to 30 s)
      -> encoder: eval(), no_grad, fp32 by default             encoders/encoding.py
      -> trim each clip to its valid frames                    encoders/encoding.py
      -> part writer (appends, renamed atomically)             extract/stream.py -> cache/writer.py (writer thread)
    => feature store <cache>/features/<encoder-id>/<dataset>/<split>/part-*.zarr
      -> (clip, target) pairs of a task split                  tasks/data.py
      -> mixture sampler -> random window -> length buckets    lalm/sampler.py
      -> projector -> [audio | prompt | answer] -> LLM (+ LoRA) -> loss    lalm/model.py, lalm/train.py
      -> [audio | prompt] -> batched greedy generation, left-padded        lalm/evaluate.py
    => run dir: checkpoints, predictions/<task>.jsonl                      lalm/runs.py, lalm/evaluate.py
      -> each metric once: corpus score + per-clip statistics              metrics/ (one registry entry each)
    => scores.json, per_sample/<task>.jsonl and .stats.npz                 scoring/score.py, scoring/per_sample.py
      -> bootstrap intervals from the saved statistics, no model           report/

The public surface, one function per stage (each module is imported only when used, so the CLI
starts fast): `xares_llm.extract.run.extract`, `xares_llm.lalm.train.train`, `xares_llm.lalm.evaluate.evaluate`,
`xares_llm.scoring.score.score_run`, and `xares_llm.pipeline.run_pipeline` for all of them in a row;
`xares_llm.probe.runner.probe` scores light heads on the store instead of the LLM (minutes, a proxy).
"""

__version__ = "0.1.0"
