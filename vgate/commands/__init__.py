"""What each CLI command does, kept apart from option parsing in ``vgate.cli``."""
