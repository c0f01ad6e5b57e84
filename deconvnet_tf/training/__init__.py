"""Training: losses, metrics, configs, callbacks and the train() function."""
