"""Training side of sciner: fine-tuning, ONNX export, evaluation, the CLI."""
