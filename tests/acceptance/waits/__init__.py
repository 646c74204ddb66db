"""Helpers of the durable-waits acceptance tests (``test_waits_*.py``)."""
