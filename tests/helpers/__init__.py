"""Helpers shared by the tests (and the benches): import from here, not from test modules."""
