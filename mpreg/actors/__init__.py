"""Actors and functions: how user code is declared, started and supervised."""
