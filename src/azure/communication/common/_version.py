"""The package version (read by the build backend and the user agent)."""

VERSION = "1.0.0b1"
__version__ = VERSION
