"""sciner core: what serving and training share (labels, records, tokenization with offsets,
span decoding, the predictor, metrics)."""

__version__ = "0.1.0"
