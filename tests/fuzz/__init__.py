"""Fuzzing of every entry point with hostile input (hypothesis, bounded budget)."""
