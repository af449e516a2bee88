"""The job engine: trainings, preprocessing and inference as data (``kinds``) over one engine."""
