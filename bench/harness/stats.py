"""Order statistics and raw-sample bookkeeping."""

import math


def quantile(values, q):
    """The q-quantile with linear interpolation between order statistics (the
    "inclusive" definition: quantile(v, 0) is the min, quantile(v, 1) the max)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    pos = q * (len(ordered) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def median(values):
    return quantile(values, 0.5)


def p90(values):
    return quantile(values, 0.9)


def ratio(value, baseline):
    if not baseline or math.isnan(baseline) or math.isnan(value):
        return math.nan
    return value / baseline


class Recorder:
    """Raw samples: scenario -> metric -> runtime -> [values], with a unit per metric.

    Times are integers in nanoseconds ("ns"), memory in kibibytes ("kB"), counts
    unitless ("n").  Insertion order is kept so reports list metrics as measured.
    """

    def __init__(self):
        self.samples = {}
        self.units = {}
        self.failures = {}  # scenario -> runtime -> message
        self.notes = {}  # scenario -> [text]

    def add(self, scenario, metric, runtime, value, unit):
        by_rt = self.samples.setdefault(scenario, {}).setdefault(metric, {})
        by_rt.setdefault(runtime, []).append(value)
        self.units[(scenario, metric)] = unit

    def fail(self, scenario, runtime, message):
        self.failures.setdefault(scenario, {}).setdefault(runtime, message)

    def note(self, scenario, text):
        notes = self.notes.setdefault(scenario, [])
        if text not in notes:
            notes.append(text)

    def values(self, scenario, metric, runtime):
        return self.samples.get(scenario, {}).get(metric, {}).get(runtime, [])

    def unit(self, scenario, metric):
        return self.units.get((scenario, metric))

    def sink(self, scenario, runtime):
        return Sink(self, scenario, runtime)

    def to_json(self):
        return {
            "units": {f"{s}/{m}": u for (s, m), u in self.units.items()},
            "samples": self.samples,
            "failures": self.failures,
            "notes": self.notes,
        }


class Sink:
    """What a scenario round reports to: ``sink(metric, value, unit)``, ``sink.note(text)``."""

    def __init__(self, recorder, scenario, runtime):
        self._recorder = recorder
        self._scenario = scenario
        self._runtime = runtime

    def __call__(self, metric, value, unit="ns"):
        self._recorder.add(self._scenario, metric, self._runtime, value, unit)

    def note(self, text):
        self._recorder.note(self._scenario, text)


class _Discard:
    """The sink of warm-up rounds: everything is dropped."""

    def __call__(self, metric, value, unit="ns"):
        pass

    def note(self, text):
        pass


discard = _Discard()
