"""Measuring: ranking and beyond-accuracy metrics, the HTML report, MLflow tracking."""
