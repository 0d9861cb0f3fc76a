"""`python -m segment …` runs the command line (segment.cli)."""
import sys

from segment.cli import main

sys.exit(main())
