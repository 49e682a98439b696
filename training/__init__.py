"""Training stage: corpus -> tokenizer -> classifier -> MLflow run and registered version."""
