"""The cache's one error type; it imports nothing from the rest of xares_llm (dependencies point inward)."""


class CacheError(Exception):
    """A feature store is missing, damaged or cannot be moved; the message says what to do."""
