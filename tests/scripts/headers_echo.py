def init():
    pass


def run(data, request_headers):
    return request_headers
