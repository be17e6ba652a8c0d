"""User-facing errors: one family, rendered as one line by the CLI (tracebacks with XARES_DEBUG=1)."""

from xares_llm.cache.errors import CacheError


class XaresError(Exception):
    """An error the user can fix; the message says what went wrong and what to do."""


class ConfigError(XaresError):
    """A task, mixture or recipe file is invalid: the message names the file and the field."""


class EncoderError(XaresError):
    """An encoder spec cannot be resolved or the encoder breaks the contract."""


class DataError(XaresError):
    """Audio shards are missing, unreadable or cannot be downloaded."""


class StoreError(XaresError, CacheError):
    """A feature store is missing, incomplete or belongs to another encoder."""
