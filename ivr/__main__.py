"""`python -m ivr` is the `meterline` command."""

from ivr.cli import main

main()
