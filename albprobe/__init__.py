"""albprobe: synthetic traffic and load probe for a Django API behind an AWS ALB."""

__version__ = "0.1.0"
