"""`python -m segment …` runs the command line (segment.cli).

Public: nothing (python -m segment).
Reads: the command line. Writes: what the command writes.
"""
import sys

from segment.cli import main

sys.exit(main())
