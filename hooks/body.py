"""Request bodies as blocking readers, inflated on the fly when gzip-encoded, with a size cap."""

from __future__ import annotations

import zlib
from typing import BinaryIO


class BodyTooLarge(Exception):
    pass


class LimitedReader:
    """``read(n)`` returns exactly ``n`` bytes unless the body ends; never more than ``limit``."""

    def __init__(self, raw: BinaryIO, *, limit: int, gzipped: bool = False,
                 chunk: int = 65536) -> None:
        self.raw = raw
        self.limit = limit
        self.total = 0
        self._chunk = chunk
        self._inflater = zlib.decompressobj(16 + zlib.MAX_WBITS) if gzipped else None
        self._buf = bytearray()
        self._eof = False

    def _fill(self, want: int) -> None:
        while len(self._buf) < want and not self._eof:
            data = self.raw.read(self._chunk)
            if not data:
                self._eof = True
                if self._inflater is not None:
                    self._buf += self._inflater.flush()
                break
            if self._inflater is not None:
                # inflate in bounded steps so a gzip bomb never materializes in memory
                data = self._inflater.decompress(data, self.limit + 1 - self.total)
                while self._inflater.unconsumed_tail and len(data) <= self.limit - self.total:
                    data += self._inflater.decompress(
                        self._inflater.unconsumed_tail, self.limit + 1 - self.total - len(data)
                    )
            self.total += len(data)
            if self.total > self.limit:
                raise BodyTooLarge(f"request body exceeds {self.limit} bytes")
            self._buf += data

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            self._fill(self.limit + 1)
            data = bytes(self._buf)
            self._buf.clear()
            return data
        self._fill(size)
        data = bytes(self._buf[:size])
        del self._buf[:size]
        return data

    def recv(self, size: int) -> bytes:
        if not self._buf:
            self._fill(1)
        data = bytes(self._buf[:size])
        del self._buf[:size]
        return data
