"""`python -m segment …` runs the command line (segment.cli)."""
import sys

from .cli import main

sys.exit(main())
