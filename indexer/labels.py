"""The one safety-label vocabulary: what a labelled passage is, in payloads, reports and the app."""

LABELS = ("harmful", "refusal", "benign")  # the ``label`` payload of the safety collection's points
SAFETY_COLLECTION = "safety"  # `gensearch index --safety` (with ``-<encoder>`` for other encoders)
