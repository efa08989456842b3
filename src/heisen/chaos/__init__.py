"""chaos: does the fix hold under pod kills and network faults?"""

from heisen.chaos._phase import run

__all__ = ["run"]
