"""Phase 3 of the HTTP/1.1 burst: write every connection's held tail, as close together as can be.

What bounds the release is the kernel, not Python: on loopback each `send`
of a one-byte segment costs 5-10 µs of system time (the TCP transmit and,
inside the same system call, the receive of that segment into the peer's
socket), against well under 1 µs of interpreter work per write. One thread
releasing 1,000 connections therefore takes 5-10 ms whatever it does
between writes. Two threads on two cores can overlap their system calls
(`os.write` lets go of the GIL while the kernel works). But on loopback the
receive work of each segment and the server itself need cores too: on a
two-core machine with the server reading, two threads were slower than one
at the server's kernel (p10-p90 12.6 against 9.5 ms for 1,000 connections,
`bench/bench_burst_kernel.py`). So the second thread is used only when the
process may run on four cores or more, leaving two to the server.

Each write goes straight to the socket's file descriptor, without the
transport's bookkeeping. The caller has waited until every transport's send
buffer is empty, so no byte can overtake another. What the kernel does not
take at once (a full send buffer, a body larger than it) is handed back and
written through the transport after the release. A transport that
encrypts (asyncio's TLS) has no plain descriptor to write to: `Held.fd` is
None and its tail goes through the transport, on the calling thread. The
burst's own TLS connections seal their tails beforehand (`_tls_stream`) and
hand over the raw socket's descriptor instead.
"""

from __future__ import annotations

import asyncio
import gc
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

PARALLEL_FROM = 128
"""Connections from which a second release thread pays for starting it (about 0.1 ms)."""
PARALLEL_CORES = 4
"""Cores the process must be allowed for a second release thread (see the module docstring)."""


@dataclass(slots=True)
class Held:
    """One connection's tail, held back until the release."""

    transport: asyncio.Transport
    tail: bytes
    fd: int | None  # None: write through the transport (TLS)
    sent_ns: int | None = None  # CLOCK_MONOTONIC just before the write; None if never written
    unsent: bytes = field(default=b"")  # what the kernel did not take at once


def descriptor(transport: asyncio.Transport) -> int | None:
    """The socket descriptor to write to directly, or None when the transport must write (TLS)."""
    if transport.get_extra_info("sslcontext") is not None:
        return None
    sock = transport.get_extra_info("socket")
    return sock.fileno() if sock is not None else None


def release_threads(held: Sequence[Held]) -> int:
    """2 for a large burst on a process allowed `PARALLEL_CORES` cores or more, else 1."""
    if len(held) < PARALLEL_FROM or any(h.fd is None for h in held):
        return 1
    return 2 if len(os.sched_getaffinity(0)) >= PARALLEL_CORES else 1


def release(held: Sequence[Held], threads: int = 1) -> None:
    """Write every tail; set each `sent_ns` and `unsent`, then write what is left through the transport.

    Call it on the event loop's thread: the transports are touched only
    there, after the release, and with one thread through the transport
    for TLS. With `threads=2`, half of the connections (every other one)
    are written by a second thread pinned to another core.
    """
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        if threads >= 2 and all(h.fd is not None for h in held):
            _release_in_two_threads(held)
        else:
            _write(held)
    finally:
        if gc_was_enabled:
            gc.enable()
    for h in held:
        if h.unsent and not h.transport.is_closing():
            h.transport.write(h.unsent)


def _write(held: Sequence[Held]) -> None:
    clock = time.monotonic_ns
    write = os.write
    for h in held:
        fd = h.fd
        if fd is None:
            h.sent_ns = clock()
            h.transport.write(h.tail)
            continue
        sent_ns = clock()
        try:
            written = write(fd, h.tail)
        except BlockingIOError:
            written = 0
        except OSError:  # reset or closed under us: the connection's reader records why
            continue
        h.sent_ns = sent_ns
        if written < len(h.tail):
            h.unsent = h.tail[written:]


def _release_in_two_threads(held: Sequence[Held]) -> None:
    cpus = sorted(os.sched_getaffinity(0))
    own_cpus = set(cpus)
    gate = threading.Lock()
    gate.acquire()
    ready = threading.Event()

    def second_half() -> None:
        try:
            os.sched_setaffinity(0, {cpus[-1]})
        except OSError:  # a core taken away meanwhile: release unpinned
            pass
        finally:
            ready.set()
        with gate:
            _write(held[1::2])

    worker = threading.Thread(target=second_half, name="heisen-release", daemon=True)
    os.sched_setaffinity(0, {cpus[0]})
    try:
        worker.start()
        ready.wait()
        gate.release()
        _write(held[0::2])
        worker.join()
    finally:
        os.sched_setaffinity(0, own_cpus)


def spread_ns(held: Sequence[Held]) -> int:
    """Time from the first write to the last, over every thread (0 with fewer than two)."""
    stamps = [h.sent_ns for h in held if h.sent_ns is not None]
    return max(stamps) - min(stamps) if len(stamps) >= 2 else 0
