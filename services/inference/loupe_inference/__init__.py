"""Loupe inference worker: runs exported ONNX models for DetectAnomalies and the ingest topic."""
