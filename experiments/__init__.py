"""The results of this repository (docs/results.md): the grid (`plan`), its runner (`run`), the ledger of
every finished run's numbers (`ledger`) and the report writer (`report`). Not part of the installed package:
run from the repository root as ``python -m experiments.<module>``."""
