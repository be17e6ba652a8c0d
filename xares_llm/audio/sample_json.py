"""A sample's ``.json`` member parsed as strict JSON: one object, or a one-line reason to drop the sample.

Python's json module accepts what JSON forbids (``NaN``, ``Infinity``) and raises plain ValueErrors
(an integer over 4300 digits) or RecursionErrors (deep nesting) besides `JSONDecodeError`; a shard
is someone else's file, so each of these is one bad record, dropped with its reason.
"""

from __future__ import annotations

import json
import math

MAX_REASON_CHARS = 200  # a reason quotes the parser's message, never an unbounded piece of the input


class SampleJsonError(ValueError):
    """Why a sample's json cannot be used, in one line."""


def _refuse_constant(name: str) -> object:
    raise SampleJsonError(f"{name} is not JSON (only finite numbers are)")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e999 parses to inf
        raise SampleJsonError(f"{text[:40]} is out of range (only finite numbers are JSON)")
    return value


def parse_sample_json(data: bytes | str) -> dict:
    """The sample's json object; `SampleJsonError` with one line saying why when it is not strict JSON."""
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
        value = json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)
    except SampleJsonError:
        raise
    except UnicodeDecodeError as e:
        raise SampleJsonError(f"not UTF-8 ({e.reason} at byte {e.start})") from e
    except RecursionError as e:
        raise SampleJsonError("nested too deeply") from e
    except ValueError as e:  # JSONDecodeError, and int() past sys.get_int_max_str_digits()
        raise SampleJsonError(str(e).splitlines()[0][:MAX_REASON_CHARS]) from e
    if not isinstance(value, dict):
        raise SampleJsonError(f"a JSON {type(value).__name__}, not an object")
    return value
