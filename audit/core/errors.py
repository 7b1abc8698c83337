"""Errors that the command line turns into one clear line and an exit code."""


class SalunInputError(Exception):
    """Bad input from the user (config, data, checkpoint): reported as one line, exit code 2."""


class Diverged(Exception):
    """Training produced a non-finite loss or weights; the run records it instead of crashing."""


class SalunEnvironmentError(SalunInputError):
    """The machine cannot do what the audit needs (a read-only or full disk, a killed worker):
    one line and exit code 2, like bad input; every finished job is kept and a rerun resumes."""
