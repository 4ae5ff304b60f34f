"""The distribution's version (read by the build backend)."""

VERSION = "0.1.0b1"
__version__ = VERSION
