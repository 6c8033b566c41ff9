"""Test helpers for a trained model's excitation statistics."""

import contextlib


@contextlib.contextmanager
def excitation_tables(model, **values):
    """The model's excitation tables (fields of its ExcitationModel) set to
    ``values`` within the block, then restored. Nothing derived needs
    dropping: the model's voice is made anew whenever an excitation table
    changes (it is keyed by a digest of them)."""
    exc = model.excitation_model
    saved = {field: getattr(exc, field) for field in values}
    for field, value in values.items():
        setattr(exc, field, value)
    try:
        yield exc
    finally:
        for field, value in saved.items():
            setattr(exc, field, value)
