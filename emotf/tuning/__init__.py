"""KerasTuner searches: the search spaces (`hypermodels`), the tuners with emotf's bookkeeping (`tuners`) and a
search on one fold's validation speakers (`search`, the work of ``python -m emotf.tune``). What searches produce
lives outside the package, in the top-level ``tuning/`` folder (``tuning/runs/``, ``tuning/best/``)."""
