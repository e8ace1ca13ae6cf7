"""The local stand-in of browser -> ALB -> gunicorn/Django, with fault switches."""
