"""Emulators of the services Turnout delivers to.

They exist so that tests, benchmarks and the demo mode exercise Turnout's destinations against a
real HTTP server that behaves like the real service (validation, asynchronous semantics, limits,
failures), without credentials or network access.
"""
