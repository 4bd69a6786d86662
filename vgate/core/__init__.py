"""The scan engine: the gate (policy + detectors), verdicts, baselines and the scan runners."""
