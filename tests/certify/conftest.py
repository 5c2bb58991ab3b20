"""Puts this folder on sys.path so the tests can import the random-network helpers in certify_nets.py
(pytest runs with --import-mode=importlib, which does not)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
