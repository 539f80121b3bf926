from helper_module import VALUE


def init():
    pass


def run(data):
    return VALUE
