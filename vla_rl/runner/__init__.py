"""The training loop: roll out, compute advantages, update, evaluate, checkpoint, log."""
