"""Finding signatures on scanned pages (see :mod:`sigverify.detect.detector`)."""
