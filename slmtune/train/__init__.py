"""Training: Trainer wiring, batching, callbacks."""
