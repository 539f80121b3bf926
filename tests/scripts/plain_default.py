def init():
    pass


def run(data, color="red"):
    return {"data": data, "color": color}
