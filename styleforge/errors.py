"""Errors caused by what the user gave us (a file, a value); the CLI prints them without a traceback."""


class UserError(Exception):
    """A problem with the user's input, with a message that names the offending file or value."""
