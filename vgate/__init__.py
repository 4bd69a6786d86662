"""vgate: a command-line gate that keeps unsafe text-to-video content out of content pipelines."""

__version__ = "0.1.0"
