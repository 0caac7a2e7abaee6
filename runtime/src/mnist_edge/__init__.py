"""mnist-edge runtime: digit classification on devices from exported TFLite/ONNX files."""
