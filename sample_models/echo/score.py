# Answers with the request body it was given (plain mode: run() gets the body as text).
def init():
    pass


def run(data):
    return data
