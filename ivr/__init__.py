"""ivr-survey: post-call NPS surveys for Asterisk contact centres."""

__version__ = "0.1.0"
