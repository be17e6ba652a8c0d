"""The feature store (format `xares-features/1`): layout, part writer, reader.

Knows nothing about models or tasks: it stores frames, offsets, keys, meta and lengths. Names resolve on
first use (PEP 562), so importing a light submodule (errors, root, locks) loads neither zarr nor numpy.
"""

import importlib

_SOURCES = {
    "xares_llm.cache.format": ("FORMAT", "EncoderInfo", "PartAttrs", "SourceInfo", "part_name", "split_dir"),
    "xares_llm.cache.locks": ("PartLock", "remove_stale_locks"),
    "xares_llm.cache.metadata": (
        "complete_parts", "list_encoders", "read_encoder_info", "read_part_attrs", "read_part_record",
    ),
    "xares_llm.cache.reader": ("Clip", "FeatureSplit"),
    "xares_llm.cache.writer": ("PartBuffer", "remove_part_temps", "remove_stale_temps", "write_part"),
}  # fmt: skip
_MODULE_OF = {name: module for module, names in _SOURCES.items() for name in names}


def __getattr__(name: str):
    if name not in _MODULE_OF:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_MODULE_OF[name]), name)


__all__ = [
    "FORMAT",
    "Clip",
    "EncoderInfo",
    "FeatureSplit",
    "PartAttrs",
    "PartBuffer",
    "PartLock",
    "SourceInfo",
    "complete_parts",
    "list_encoders",
    "part_name",
    "read_encoder_info",
    "read_part_attrs",
    "read_part_record",
    "remove_part_temps",
    "remove_stale_locks",
    "remove_stale_temps",
    "split_dir",
    "write_part",
]
