"""The practitioner's path: diagnose your own RBM (``snrbench diagnose MODEL --data DATA``)."""
from .diagnose import SPEEDS, Diagnosis, ModelDiagnosis, OverBudget, diagnose
from .inputs import InputError, read_data, read_models

__all__ = ["diagnose", "Diagnosis", "ModelDiagnosis", "OverBudget", "SPEEDS", "InputError", "read_models", "read_data"]
