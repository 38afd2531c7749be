"""User-facing tools as library functions, with thin CLI wrappers (`*_cmd.py`)."""
