import sys

try:
    from heisen.cli import main
except KeyboardInterrupt:  # Ctrl-C while still importing: nothing has started yet
    sys.exit(130)

main()
