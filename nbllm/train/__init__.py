"""Training loops: supervised fine-tuning (sft.py), parameter selection (methods.py),
batching and packing (batches.py), exact-resume checkpoints (checkpoint.py)."""
