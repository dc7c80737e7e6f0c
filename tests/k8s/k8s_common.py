"""What tests/k8s/check.py's parts share: the report of problems, object names."""


class Report:
    def __init__(self, where):
        self.where = where
        self.errors = []

    def fail(self, what, msg):
        self.errors.append(f"{self.where}: {what}: {msg}")


def obj_name(o):
    return f"{o.get('kind')}/{(o.get('metadata') or {}).get('name')}"
