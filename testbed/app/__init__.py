"""The testbed's Django API: the production app's shape (django-cors-headers, /health, JSON)."""
