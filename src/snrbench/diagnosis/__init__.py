"""The practitioner's path: diagnose your own RBM (``snrbench diagnose MODEL --data DATA``)."""
from .diagnose import Diagnosis, ModelDiagnosis, diagnose
from .inputs import InputError, read_data, read_models

__all__ = ["diagnose", "Diagnosis", "ModelDiagnosis", "InputError", "read_models", "read_data"]
