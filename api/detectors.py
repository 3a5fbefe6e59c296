"""The service detectors the API generates with, built once per process.

The keyword path is ready at once; the learned one is trained on the labelled
recipes in the shared data when a request first needs it (about three seconds,
so that request waits; later ones do not). Without the labelled recipes the
learned path is the keyword path.
"""

import threading

from domain.catalog import load_catalog
from domain.intent import Detector


class Detectors:
    """The keyword detector, and the learned one, trained on first use (``None`` with nothing to learn from)."""

    def __init__(self) -> None:
        self.keyword = Detector(load_catalog())
        self._learned: Detector | None = None
        self._lock = threading.Lock()
        self._trained = False
        self.source: str | None = None

    def learned(self) -> Detector | None:
        """Blocks while the first call trains (about three seconds); call it from a thread."""
        with self._lock:
            if not self._trained:
                from flowledger.detect import default_training_file, read_examples

                path = default_training_file()
                if path is not None:
                    self._learned = Detector.train(self.keyword.catalog, read_examples(path))
                    self.source = path.name
                self._trained = True
        return self._learned
