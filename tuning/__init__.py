"""KerasTuner search spaces for emotf's architectures (built in the tuning issue)."""
