"""The feature store (format `xares-features/1`): layout, part writer, reader.

Knows nothing about models or tasks: it stores frames, offsets, keys, meta and lengths.
"""

from xares_llm.cache.format import FORMAT, EncoderInfo, PartAttrs, SourceInfo, part_name, split_dir
from xares_llm.cache.locks import PartLock, remove_stale_locks
from xares_llm.cache.metadata import complete_parts, list_encoders, read_encoder_info, read_part_attrs, read_part_record
from xares_llm.cache.reader import Clip, FeatureSplit
from xares_llm.cache.writer import PartBuffer, remove_part_temps, remove_stale_temps, write_part

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
