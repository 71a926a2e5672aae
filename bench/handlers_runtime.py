"""Runs under the 1.2-1 runtime's Python 3.9: trains the benchmark model, times the handlers.

``python handlers_runtime.py train OUT`` fits the 10-feature LinearRegression and writes it with
joblib (so the pickle comes from the container's scikit-learn 1.2.1 and numpy 1.24.1).

``python handlers_runtime.py handlers`` times decode + predict + encode per request for our
``inference/inference.py`` and for the container's defaults, in the same process, with the
library the container runs (``sagemaker_containers`` 2.8.6.post2), and prints the timings as
JSON: the fastest loop of each body (``results``), and the p50 and p99 of single requests,
the two sides called in turns (``latency``). The defaults are ``encoders.decode`` (+ float32
cast for CSV and JSON, as the container's ``default_input_fn``), ``model.predict`` and
``worker.Response(encoders.encode(...))``; a single CSV row, which the default decoder squeezes
to 1-D and the model then refuses, is reshaped to one row so that there is something to
compare.

``python handlers_runtime.py profile`` prints, as JSON, the microseconds of each step of a
one-row CSV and JSON request, ours and the defaults (decode, predict, encode).

Keep to Python 3.9 syntax and to what the runtime has (no skdeploy, no pulumi).
"""

import importlib
import io
import json
import os
import sys
import time

import joblib
import numpy as np
from sklearn.linear_model import LinearRegression

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FEATURES = 10
SIZES = (1, 100, 10000)
JSON_TYPE = "application/json"
CSV_TYPE = "text/csv"
NPY_TYPE = "application/x-npy"
SEED = 20240917


def fitted_model():
    """A LinearRegression on 10 features, fitted on 1,000 synthetic rows with a fixed seed."""
    rng = np.random.default_rng(SEED)
    x = rng.normal(0.0, 100.0, size=(1000, FEATURES)).round(4)
    y = x @ rng.normal(size=FEATURES) + rng.normal(0.0, 1.0, size=1000)
    return LinearRegression().fit(x, y)


def request_rows(count):
    """``count`` rows of 10 features, 4 decimals each (the same rows for every format)."""
    rng = np.random.default_rng(SEED + 1)
    return rng.normal(0.0, 100.0, size=(count, FEATURES)).round(4)


def bodies(rows):
    """The same rows as a CSV text, a JSON list of rows and an .npy array."""
    as_csv = "\n".join(",".join(f"{value:.4f}" for value in row) for row in rows) + "\n"
    as_json = json.dumps(rows.tolist())
    buffer = io.BytesIO()
    np.save(buffer, rows, allow_pickle=False)
    return {CSV_TYPE: as_csv, JSON_TYPE: as_json, NPY_TYPE: buffer.getvalue()}


def _loops(function, min_time):
    start = time.perf_counter()
    function()
    once = time.perf_counter() - start
    return max(1, int(min_time / max(once, 1e-7)))


def _sample(function, loops):
    start = time.perf_counter()
    for _ in range(loops):
        function()
    return (time.perf_counter() - start) / loops


def paired_best(first, second, repeat=15, min_time=0.03):
    """Seconds per call of each function: the fastest of ``repeat`` samples, taken in turns.

    Alternating the samples spreads a busy moment of a shared machine over both sides, and the
    minimum is the least disturbed sample; looping makes calls of microseconds measurable.
    """
    loops = (_loops(first, min_time), _loops(second, min_time))
    best = [float("inf"), float("inf")]
    for _ in range(repeat):
        best[0] = min(best[0], _sample(first, loops[0]))
        best[1] = min(best[1], _sample(second, loops[1]))
    return best[0], best[1]


#: (rows, requests per side) for the per-request latency percentiles: enough requests for a
#: p99 of a few hundred samples, about two seconds a body.
LATENCY_SAMPLES = ((1, 20000), (100, 4000))


def interleaved_latencies(first, second, count):
    """Seconds of each of ``count`` calls of each function, the two called in turns.

    One call of each, then the next pair: a busy moment of a shared machine lands on both
    sides, so their percentiles can be compared within a run. A short warm-up comes first.
    """
    clock = time.perf_counter
    times = ([], [])
    for _ in range(min(200, count)):
        first()
        second()
    for _ in range(count):
        start = clock()
        first()
        middle = clock()
        second()
        end = clock()
        times[0].append(middle - start)
        times[1].append(end - middle)
    return times


def percentile(values, share):
    """The ``share`` quantile (0.5 = median) by nearest rank, as bench/common.py computes it."""
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(share * len(ordered) + 0.5) - 1))
    return ordered[index]


def train(out):
    joblib.dump(fitted_model(), out)


class Sides:
    """The two request paths on one model: ours (inference.py) and the container's defaults."""

    def __init__(self, model):
        from sagemaker_containers.beta.framework import content_types, encoders, worker

        sys.path.insert(0, os.path.join(REPO, "inference"))
        self.ours = importlib.import_module("inference")
        self.model = model
        self.content_types, self.encoders, self.worker = content_types, encoders, worker

    def ours_decode(self, body, content_type):
        return self.ours.input_fn(body, content_type)

    def ours_request(self, body, content_type):
        ours = self.ours
        prediction = ours.predict_fn(ours.input_fn(body, content_type), self.model)
        return ours.output_fn(prediction, JSON_TYPE).get_data()

    def default_decode(self, body, content_type):
        data = self.encoders.decode(body, content_type)
        if content_type in self.content_types.UTF8_TYPES:
            data = data.astype("float32")
        if data.ndim == 1:  # a single CSV row: the default would fail at predict
            data = data.reshape(1, -1)
        return data

    def default_request(self, body, content_type):
        prediction = self.model.predict(self.default_decode(body, content_type))
        return self.worker.Response(
            self.encoders.encode(prediction, JSON_TYPE), mimetype=JSON_TYPE
        ).get_data()

    def check(self, body, content_type, size):
        """Both sides must give the same predictions before they are timed."""
        ours_out = json.loads(self.ours_request(body, content_type))["predictions"]
        default_out = json.loads(self.default_request(body, content_type))
        # float32 (defaults) against float64 (ours): equal to float32 precision.
        if not np.allclose(ours_out, default_out, rtol=1e-4, atol=1e-2):
            raise SystemExit(f"ours and the defaults disagree for {content_type} x {size}")


def best_times(sides):
    """Per body: the fastest of 15 loops of requests, and of predict alone, for each side."""
    results = []
    for size in SIZES:
        for content_type, body in bodies(request_rows(size)).items():
            sides.check(body, content_type, size)
            ours_data = sides.ours_decode(body, content_type).data
            default_data = sides.default_decode(body, content_type)
            ours_time, default_time = paired_best(
                lambda b=body, c=content_type: sides.ours_request(b, c),
                lambda b=body, c=content_type: sides.default_request(b, c),
            )
            ours_predict, default_predict = paired_best(
                lambda d=ours_data: sides.model.predict(d),
                lambda d=default_data: sides.model.predict(d),
            )
            results.append(
                {
                    "content_type": content_type,
                    "rows": size,
                    "bytes": len(body),
                    "ours": ours_time,
                    "default": default_time,
                    "ours_predict": ours_predict,
                    "default_predict": default_predict,
                }
            )
    return results


def latency_percentiles(sides):
    """Per CSV and JSON body of 1 and 100 rows: p50 and p99 of single requests, each side."""
    latency = []
    for size, count in LATENCY_SAMPLES:
        for content_type, body in bodies(request_rows(size)).items():
            if content_type == NPY_TYPE:
                continue
            sides.check(body, content_type, size)
            ours_times, default_times = interleaved_latencies(
                lambda b=body, c=content_type: sides.ours_request(b, c),
                lambda b=body, c=content_type: sides.default_request(b, c),
                count,
            )
            entry = {"content_type": content_type, "rows": size, "requests": count}
            for name, times in (("ours", ours_times), ("default", default_times)):
                entry[name + "_p50"] = percentile(times, 0.5)
                entry[name + "_p99"] = percentile(times, 0.99)
            latency.append(entry)
    return latency


def profile_steps(sides, body, content_type):
    """The timed steps of one request on each side, by name."""
    ours, model, encoders = sides.ours, sides.model, sides.encoders
    response = sides.worker.Response
    data = ours.input_fn(body, content_type)
    prediction = ours.predict_fn(data, model)
    default_data = sides.default_decode(body, content_type)
    answer = model.predict(default_data)
    return {
        "ours request": lambda: sides.ours_request(body, content_type),
        "ours decode": lambda: ours.input_fn(body, content_type),
        "ours predict": lambda: ours.predict_fn(data, model),
        "model.predict": lambda: model.predict(data.data),
        "ours encode": lambda: ours.output_fn(prediction, JSON_TYPE).get_data(),
        "default request": lambda: sides.default_request(body, content_type),
        "default decode": lambda: sides.default_decode(body, content_type),
        "default predict": lambda: model.predict(default_data),
        "default encode": lambda: response(
            encoders.encode(answer, JSON_TYPE), mimetype=JSON_TYPE
        ).get_data(),
        "Response alone": lambda: response("[1.0]", mimetype=JSON_TYPE).get_data(),
    }


def profile():
    """Microseconds per step of a one-row request, ours and the defaults (the README's figures).

    Each step is timed alone, over its own input, as the fastest of 16 loops: decode, predict
    (and the model's predict alone), encode (and werkzeug's Response alone).
    """
    sides = Sides(fitted_model())
    steps = {}
    for content_type, body in bodies(request_rows(1)).items():
        if content_type == NPY_TYPE:
            continue
        for name, function in profile_steps(sides, body, content_type).items():
            seconds = min(paired_best(function, function, repeat=8))
            steps[content_type + " " + name] = round(seconds * 1e6, 2)
    json.dump({"python": list(sys.version_info[:3]), "microseconds": steps}, sys.stdout, indent=1)


def handlers():
    sides = Sides(fitted_model())
    document = {
        "python": list(sys.version_info[:3]),
        "results": best_times(sides),
        "latency": latency_percentiles(sides),
    }
    json.dump(document, sys.stdout)


if __name__ == "__main__":
    if sys.argv[1:2] == ["train"] and len(sys.argv) == 3:
        train(sys.argv[2])
    elif sys.argv[1:] == ["handlers"]:
        handlers()
    elif sys.argv[1:] == ["profile"]:
        profile()
    else:
        sys.stderr.write("usage: handlers_runtime.py train OUT | handlers | profile\n")
        sys.exit(2)
