"""`xares probe`: light heads on frozen features, a signal in minutes instead of GPU-days.

Reads only the feature store (no audio, no encoder, no LLM)::

    store split -> per-clip mean and std of the valid frames      embeddings.py (cached beside the store)
      classification (accuracy, mAP): linear, MLP, kNN            labels.py, heads.py
      speech recognition (iWER, iCER): CTC over the frames        ctc.py (frames streamed from the store)
      captioning (FENSE, DATE): caption of the nearest train clip captioning.py
    => <out>/probe_scores.json, <out>/<head>/predictions/<task>.jsonl   outputs.py, runner.py

The scores rank encoders; they are not LALM scores and are never mixed with them.
"""
