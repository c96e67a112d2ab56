"""Errors shared across agentkit's parts."""


class UserFacingError(Exception):
    """An error whose message tells the whole story (what happened, what to do): the CLI prints
    it without a traceback."""
