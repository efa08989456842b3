"""One run seed; every random source derives its own sub-seed from it by name."""

from __future__ import annotations

import random
import secrets
import zlib
from typing import Any


def new_seed() -> int:
    return secrets.randbelow(2**31)


def derive(seed: int, *names: str | int) -> int:
    """A stable sub-seed for `names` (e.g. derive(seed, "stress", "trial", 3))."""
    text = ":".join(str(name) for name in (seed, *names))
    return zlib.crc32(text.encode()) & 0x7FFFFFFF


def rng(seed: int, *names: str | int) -> random.Random:
    return random.Random(derive(seed, *names))


def faker(seed: int, *names: str | int) -> Any:
    from faker import Faker

    instance = Faker()
    instance.seed_instance(derive(seed, "faker", *names))
    return instance
