"""Export: ONNX (checked against PyTorch) and TensorRT engines built on the target machine."""
