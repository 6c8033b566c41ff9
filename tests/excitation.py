"""Test helpers for a trained model's excitation statistics."""

import contextlib


@contextlib.contextmanager
def excitation_tables(model, **values):
    """The model's excitation tables (fields of its ExcitationModel) set to
    ``values`` within the block (what generation derives from the model
    dropped), then restored."""
    exc = model.excitation_model
    saved = {field: getattr(exc, field) for field in values}
    for field, value in values.items():
        setattr(exc, field, value)
    model._derived_cache = None
    try:
        yield exc
    finally:
        for field, value in saved.items():
            setattr(exc, field, value)
        model._derived_cache = None
