"""One converter per target format; each takes a trained Keras model and its spec."""
