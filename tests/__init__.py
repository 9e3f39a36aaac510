"""The test suite: a specification of behaviour, one module per module under test."""
