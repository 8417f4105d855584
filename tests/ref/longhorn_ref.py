#!/usr/bin/python3
"""Backward-compatible entry point: the Longhorn reference now lives in ref_model.py (the model
scaffold, docs/layers.md §0) and mixers/longhorn.py (the §2.2 mixer plugin).  Same commands, flags and
exit codes as ref_model.py; see README.md in this directory."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ref_model  # noqa: E402

if __name__ == "__main__":
    ref_model.run(prog="longhorn_ref.py")
