"""Training: one run on one speaker-independent fold (`trainer`), what runs and searches share (`experiment`:
records, classes, split, pipeline; `objectives`: optimiser, loss, metrics; `contrastive`: the av pre-training),
the devices and XLA (`runtime`), kill-safe callbacks (`callbacks`) and the run folder (`rundir`)."""
