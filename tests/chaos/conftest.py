"""The chaos suite reuses the data-plane suite's isolated stack (fresh database, unique
topics and consumer groups per test)."""

from tests.dataplane.conftest import stack

__all__ = ["stack"]
