"""`python -m heisen.system.stub --root DIR --port P --seed S`: a stub in its own process."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from heisen.errors import HeisenError, exit_code_for


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m heisen.system.stub",
        description="WireMock-compatible stub server with latency and faults.",
    )
    parser.add_argument(
        "--root", type=Path, default=None, help="directory holding mappings/ and __files/"
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument(
        "--port", type=int, default=8080, help="0 picks a free port (see --port-file)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the delay and fault RNG")
    parser.add_argument(
        "--journal-limit", type=int, default=10_000, help="requests kept; 0 disables the journal"
    )
    parser.add_argument("--port-file", type=Path, default=None, help="write the bound port here")
    parser.add_argument(
        "--allow-host",
        action="append",
        default=[],
        metavar="HOST",
        help="a host a proxyBaseUrl may reach besides loopback (repeatable)",
    )
    parser.add_argument("--verbose", action="store_true", help="log every request")
    args = parser.parse_args(argv)
    from heisen._redact import RedactingFormatter

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(RedactingFormatter("%(asctime)s %(message)s"))
    logging.basicConfig(level=logging.INFO, handlers=[handler])
    from heisen.system.stub import serve

    try:
        serve(
            args.root,
            host=args.host,
            port=args.port,
            seed=args.seed,
            journal_limit=args.journal_limit,
            verbose=args.verbose,
            port_file=args.port_file,
            allow_hosts=args.allow_host,
        )
    except HeisenError as error:
        logging.getLogger("heisen.system.stub").error("%s", error)
        return exit_code_for(error)
    return 0


if __name__ == "__main__":
    sys.exit(main())
