"""PatchCore-style anomaly detection on a frozen EfficientNet-Lite backbone, split by role:

- features.FeatureExtractor: backbone taps -> locally aggregated patch features
- coreset.KCenterGreedySampler: memory bank selection on random projections (vectorised)
- scoring.PatchScorer: patch scores (power distance to the bank), border normalisation, anomaly map
- export: one ONNX graph from letterboxed pixels to the anomaly map
- detector.Detector: the training pipeline that ties them together

Image score, threshold, confidence and mask rules: loupe_models.anomaly_model (shared with inference).
"""
