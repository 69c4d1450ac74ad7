"""ttsops: a text-to-speech service with observability built in, and its log forensics."""

__version__ = "0.1.0"
