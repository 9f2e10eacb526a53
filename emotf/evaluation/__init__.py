"""Evaluation: WA / UA / macro-F1 (`metrics`), a model's predictions over records scored per clip and per
utterance (`scoring`), a finished run re-scored on any records (`rescore`, the work of
``python -m emotf.evaluate``), summaries over runs (`summary`) and figures (`plots`)."""
