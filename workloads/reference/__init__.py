"""NumPy reference Transformer with a hand-written backward pass, trained with real quantization at q0..q3."""
