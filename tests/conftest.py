"""pytest wiring: the helpers live in harness.py (import them from there)."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import procs  # noqa: E402,F401  (the fixture every test may use)
