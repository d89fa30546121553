"""Shot batches: many shots from a YAML file, run locally with resumable state or exported as an
Open Job Description job for a render farm (see docs/batch.md)."""
