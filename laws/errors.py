"""The exception type for mistakes a user can make (bad file, bad option, unreachable target),
its subclasses for the cases a caller may want to tell apart, and the one a termination signal
raises.

The CLI (``shapeshift.commands.options.Group``) turns an ``InputError`` (any subclass alike)
into one line on stderr and exit code 2, an ``OSError`` on an output into one line naming the
path, ``KeyboardInterrupt`` and ``Terminated`` into one line and exit 130 and 143; every other
exception is a bug and keeps its traceback.
"""


class InputError(ValueError):
    """A problem with the user's input; the message names what is wrong and where."""


class UnreachableTarget(InputError):
    """A target loss no shape can reach (at or below every shape's floor), or that a plan's
    route does not reach."""


class BadInputFile(InputError):
    """An input file (laws, curves, a plan, a sweep) that is missing, not a regular file, not
    UTF-8 text, or whose content is malformed; the message names the file (and the line or
    field)."""


class Terminated(BaseException):
    """SIGTERM arrived: raised in the main thread, so that ``finally`` blocks (worker pools,
    temporary files, locks) run before the command exits 143. A ``BaseException``, like
    ``KeyboardInterrupt``: no ``except Exception`` may swallow it."""
