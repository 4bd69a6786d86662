"""Text normalisation shared by the detectors (see ``vgate.text.normalize``)."""
