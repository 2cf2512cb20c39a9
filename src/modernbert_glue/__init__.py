"""modernbert-glue: fine-tune, evaluate, compare and serve text encoders on GLUE SST-2."""

__version__ = "0.1.0"
