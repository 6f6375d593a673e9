"""PatchCore-style anomaly detection on a frozen EfficientNet-Lite backbone, split by role:

- features.FeatureExtractor: backbone taps -> locally aggregated patch features
- coreset.KCenterGreedySampler: memory bank selection on random projections (vectorised)
- scoring.PatchScorer: patch scores (power distance to the bank), border normalisation, anomaly map
- calibration: threshold and Confidence from the normal score distribution (F1-optimal with anomalies)
- export: one ONNX graph from image tensor to image score and anomaly map
- detector.Detector: the training pipeline that ties them together
"""
