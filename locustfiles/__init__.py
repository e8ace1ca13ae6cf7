"""Locust user classes and load shapes; each file runs with plain `locust -f locustfiles/<file>.py`."""
