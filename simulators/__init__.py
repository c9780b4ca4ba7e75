"""Field devices in software (a later issue). Depends on :mod:`devices` only."""
