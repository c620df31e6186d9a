"""The one exception type for mistakes a user can make (bad file, bad option, unreachable target).

The CLI turns an ``InputError`` into one line on stderr and exit code 2; every other exception
is a bug and keeps its traceback.
"""


class InputError(ValueError):
    """A problem with the user's input; the message names what is wrong and where."""
