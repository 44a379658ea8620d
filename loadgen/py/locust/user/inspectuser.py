"""Task ratios of user classes (Locust's --show-task-ratio helpers)."""


def _ratios(holder, parent_ratio=1.0):
    out = {}
    tasks = holder.tasks or []
    n = len(tasks)
    for t in set(tasks):
        r = tasks.count(t) / n * parent_ratio
        name = getattr(t, "__name__", str(t))
        entry = {"ratio": r}
        if hasattr(t, "tasks"):
            entry["tasks"] = _ratios(t, 1.0)
        out[name] = entry
    return out


def get_ratio(user_classes, user_spawned, total):
    weights = {u.__name__: u.weight for u in user_classes}
    s = sum(weights.values()) or 1
    return {u.__name__: {"ratio": weights[u.__name__] / s, "tasks": _ratios(u)} for u in user_classes}
