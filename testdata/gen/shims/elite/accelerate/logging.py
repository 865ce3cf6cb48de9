"""Stand-in for accelerate.logging: get_logger returns a standard-library logger."""
import logging


def get_logger(name, log_level=None):
    return logging.getLogger(name)
