"""The installed version of shapeshift, recorded in every output so that it names its maker."""

from importlib.metadata import PackageNotFoundError, version


def shapeshift_version() -> str:
    """The package version, or "unknown" when running from a checkout that is not installed."""
    try:
        return version("shapeshift")
    except PackageNotFoundError:
        return "unknown"
