"""A run's compute to a target loss read off its eval records, written out by hand: what the
loop's tests compare ``validate.measured`` with (its ``reach`` and ``crossing``)."""

import math


def first_crossing(curve, target):
    """FLOPs at the first eval at or below ``target``, log-linearly interpolated from the eval
    before it; None if never."""
    for i, point in enumerate(curve):
        if point["eval_loss"] <= target:
            if i == 0 or curve[i - 1]["flops"] <= 0:
                return float(point["flops"])
            low = curve[i - 1]
            t = (low["eval_loss"] - target) / (low["eval_loss"] - point["eval_loss"])
            return math.exp(math.log(low["flops"])
                            + t * (math.log(point["flops"]) - math.log(low["flops"])))
    return None


SPAN = 0.35  # decades either side of the crossing (validate.measured.SPAN)


def line_crossing(curve, target):
    """Where a least-squares line in (log FLOPs, log loss) through the crossing shape's
    evaluations within SPAN decades of the crossing (at least the three nearest) meets the
    target; started at the first crossing, centred on each line's crossing five times, kept
    within that shape's evaluations (normal equations by hand)."""
    first = first_crossing(curve, target)
    if first is None:
        return None
    index = next(i for i, p in enumerate(curve) if p["eval_loss"] <= target)
    shape = curve[index]["shape"]
    low = index
    while low > 0 and curve[low - 1]["shape"] == shape:
        low -= 1
    high = index
    while high + 1 < len(curve) and curve[high + 1]["shape"] == shape:
        high += 1
    points = [(math.log(p["flops"]), math.log(p["eval_loss"]))
              for p in curve[low:high + 1] if p["flops"] > 0]
    if len(points) < 3:
        return first
    centre = math.log(first)
    for _ in range(5):
        limit = max(SPAN * math.log(10), sorted(abs(x - centre) for x, _ in points)[2])
        chosen = [(x, y) for x, y in points if abs(x - centre) <= limit]
        n = len(chosen)
        sx, sy = sum(x for x, _ in chosen), sum(y for _, y in chosen)
        sxx, sxy = sum(x * x for x, _ in chosen), sum(x * y for x, y in chosen)
        slope = (n * sxy - sx * sy) / (n * sxx - sx * sx)
        if slope >= 0:
            return first
        intercept = (sy - slope * sx) / n
        centre = min(max((math.log(target) - intercept) / slope, points[0][0]), points[-1][0])
    return math.exp(centre)
