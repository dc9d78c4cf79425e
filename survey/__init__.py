"""survey: find and fix WFC3/IR exposures hit by time-variable background, program by program."""

__version__ = "0.1.0"

__all__ = ["__version__"]
