"""Finding signatures on scanned pages (see :mod:`sigverify.detection.detector`)."""
