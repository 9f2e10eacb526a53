"""Training: one run on one speaker-independent fold (`trainer`), what runs and searches share (`experiment`:
records, classes, split, pipeline; `objectives`: optimiser, loss, metrics; `contrastive`: the av pre-training),
the devices and XLA (`runtime`) and kill-safe callbacks (`callbacks`); the run folder is `emotf.runs`."""
