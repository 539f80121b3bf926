def init():
    pass


def run(request_headers):
    return 1
