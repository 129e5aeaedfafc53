def label(name):
    return _clean(name).title()


def _clean(name):
    return name.replace("_", " ").strip("-")
