"""The hooks the epoch loop calls after each epoch, one per file (as Keras keeps its callbacks)."""
