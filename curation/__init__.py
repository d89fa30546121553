"""Cartoon clip curation (ToonCrafter's training-set recipe): shots, static/text/aesthetic filters,
captions and caption-frame alignment, into a Parquet manifest the trainer reads (`inbetween-data`)."""
