import logging
import sys

log = logging.getLogger("user.model")


def init():
    print("Initializing")
    log.info("user logging from init")


def run(data):
    print("scoring", data, sep=None)
    print("to stderr", file=sys.stderr)
    log.debug("user debug line")
    log.warning("user warning line")
    return "ok"
