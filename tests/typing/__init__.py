"""Typing fixtures: files that mypy (strict) checks, run by ``tests/unit/test_typing.py``."""
