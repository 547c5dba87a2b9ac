"""Ranking model: PyTorch definition, training, evaluation, ONNX export, bundle writer."""
