"""Read a WebDataset shard (``.tar`` or ``.tar.gz``) as a stream of samples, checking its integrity.

Members are grouped into samples as webdataset does: consecutive regular files whose names share
the part before the first dot of the basename (directory included) form one sample, keyed by it;
the rest of the name, lower-cased, is the extension. Names without a dot, ``__x__`` metadata files
and non-regular members are skipped.

Integrity is checked while streaming, so damage is found in one pass and never silently:

- gzip: `gzip.GzipFile` checks each member's CRC32 and length at its end; the stream is always
  read to its end, even after the tar's last member.
- tar: tarfile checks each header's checksum and raises when member data is cut short. It stops,
  without an error, at a damaged header or at the end of a file cut between members; so after its
  last member only zero bytes may follow, and at least one zero block (the end-of-archive marker).

A plain ``.tar`` has no checksum over member data: a changed byte inside a clip is found only
when the audio then fails to decode.

A damaged shard raises `ShardDamage` after the samples read before the damage were yielded.
`ShardDamage.trusted` tells whether those samples can be used: yes when the file was cut short or
a tar header is broken (what came before passed its checks); no when a gzip checksum or the
compressed data is wrong (the wrong bytes may be anywhere).
"""

from __future__ import annotations

import gzip
import re
import tarfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from xares_llm.errors import DataError

BLOCK = 512  # tar block size
GZIP_MAGIC = b"\x1f\x8b"
KEY_PATTERN = re.compile(r"^((?:.*/|)[^.]+)[.]([^/]*)$")  # webdataset's base_plus_ext
META_PATTERN = re.compile(r"__[^/]*__($|/)")


@dataclass
class Sample:
    key: str
    files: dict[str, bytes] = field(default_factory=dict)  # extension -> bytes
    problem: str = ""  # set when the sample is malformed (a file twice): it cannot be used


class ShardDamage(DataError):
    """The shard's bytes are damaged; `trusted` says whether the samples yielded before are sound."""

    def __init__(self, reason: str, trusted: bool, cut_sample: str | None = None):
        super().__init__(reason)
        self.reason, self.trusted, self.cut_sample = reason, trusted, cut_sample


class _Tap:
    """A read-only stream that counts bytes and remembers where the last non-zero byte ended."""

    def __init__(self, inner: BinaryIO):
        self.inner, self.position, self.data_end = inner, 0, 0

    def read(self, size: int = -1) -> bytes:
        data = self.inner.read(size)
        if data:
            kept = len(data.rstrip(b"\0"))
            if kept:
                self.data_end = self.position + kept
            self.position += len(data)
        return data

    def drain(self) -> None:
        while self.read(1 << 20):
            pass


def read_samples(path: Path) -> Iterator[Sample]:
    """Yield the shard's samples in order; raise `ShardDamage` at the first sign of damage."""
    with Path(path).open("rb") as raw:
        compressed = raw.read(2) == GZIP_MAGIC
        raw.seek(0)
        inner = gzip.GzipFile(fileobj=raw, mode="rb") if compressed else raw
        tap = _Tap(inner)
        current: Sample | None = None
        members = 0
        archive_end = 0  # where the byte after the last member's padded data lies
        try:
            with tarfile.open(fileobj=tap, mode="r|") as tar:
                for member in tar:
                    members += 1
                    archive_end = member.offset_data + -(-member.size // BLOCK) * BLOCK
                    name = member.name
                    match = KEY_PATTERN.match(name) if member.isreg() else None
                    if match is None or META_PATTERN.match(name) or _is_meta(name):
                        continue
                    key, ext = match.group(1), match.group(2).lower()
                    if current is not None and current.key != key:
                        yield current
                        current = None
                    current = current or Sample(key)
                    data = tar.extractfile(member).read()
                    if ext in current.files:
                        current.problem = f"{ext!r} twice (member {name})"
                    current.files[ext] = data
            tap.drain()
        except (EOFError, tarfile.ReadError, gzip.BadGzipFile, zlib.error) as e:
            raise _damage(e, members, compressed, current) from e
        if tap.data_end > archive_end:
            raise ShardDamage(
                f"tar damaged after {members} members: non-tar bytes at offset {archive_end} "
                "(a broken header); re-download the shard",
                trusted=True,
                cut_sample=current.key if current else None,
            )
        if members and tap.position - archive_end < BLOCK:
            raise ShardDamage(
                f"truncated after {members} members (no end-of-archive block); re-download the shard",
                trusted=True,
                cut_sample=current.key if current else None,
            )
        if current is not None:
            yield current


def _is_meta(name: str) -> bool:
    """webdataset's top-level ``__x__`` metadata files."""
    return "/" not in name and name.startswith("__") and name.endswith("__")


def _damage(error: Exception, members: int, compressed: bool, current: Sample | None) -> ShardDamage:
    """Turn a read error into a `ShardDamage`: wrong gzip bytes, a cut-short file or a broken header."""
    cut = current.key if current else None
    # tarfile reports a zlib error met while reading a header as ReadError("zlib error: ...").
    if isinstance(error, gzip.BadGzipFile | zlib.error) or str(error).startswith("zlib error"):
        return ShardDamage(
            f"corrupt gzip data ({error}); the shard's bytes are wrong, re-download it", trusted=False, cut_sample=cut
        )
    if isinstance(error, EOFError) or "unexpected end" in str(error):
        what = "gzip stream" if compressed and isinstance(error, EOFError) else "tar"
        return ShardDamage(
            f"truncated: the {what} ends early, after {members} tar members; re-download the shard",
            trusted=True,
            cut_sample=cut,
        )
    return ShardDamage(
        f"not a readable tar ({error}) after {members} members; re-download the shard", trusted=True, cut_sample=cut
    )
