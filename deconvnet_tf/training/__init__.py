"""Training: losses, metrics, configs, learning-rate schedules, checkpointing, callbacks and the
train() function."""
