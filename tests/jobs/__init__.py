"""Importable job functions and process helpers for the executor tests."""
