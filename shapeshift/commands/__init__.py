"""The ``shapeshift`` commands, thin click wrappers over the library: parse, call, print.

``options`` holds what they share (errors as exit 2, option groups that build one config
object, JSON output, the progress bar); ``planning`` (``presets``, ``laws``, ``fit``,
``search``), ``optimal`` (``allocate``, ``isoflop``, ``predict``), ``simulation``
(``simulate``, ``compare``), ``validation`` (``validate train``, ``validate run``) and
``measure`` the commands. ``cli.py`` loads each module when its command is asked for; the
libraries below (``laws``, ``sim``, ``validate``) know nothing of click.
"""
