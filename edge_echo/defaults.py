"""The defaults the command line shows, in a module that imports nothing.

`edge-echo --help` must start without numpy or the runtimes; specs, verify and bench take
their defaults from here, so each value is written once.
"""

# The echo models (specs.py).
DEFAULT_LENGTH = 5
# Past this the unrolled TFLite graph grows to megabytes and the fast loop to
# minutes; the seed notebook plays with lengths of a handful of steps.
MAX_LENGTH = 128
DEFAULT_SEED = 1

# verify.py
DEFAULT_SAMPLES = 256
DEFAULT_VERIFY_SEED = 7

# bench.py
DEFAULT_RUNS = 300
DEFAULT_WARMUP = 20
# model.predict costs tens of milliseconds a call; it gets fewer runs.
DEFAULT_PREDICT_RUNS = 20
DEFAULT_BATCH = 64
