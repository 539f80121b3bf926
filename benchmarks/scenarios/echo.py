# Plain echo: run() gets the POST body as text and answers it (as a JSON string).
def init():
    pass


def run(data):
    return data
