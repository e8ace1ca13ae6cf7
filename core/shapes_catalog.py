"""Names of the load shapes (implemented in locustfiles/shapes.py); kept here so config
validation does not import locust."""

SHAPES: tuple[str, ...] = (
    "users",  # constant user count (closed model), -u/-r
    "step",  # step ramp for capacity tuning
    "spike",
    "soak",
    "idle-gap",  # low rate with gaps around the backend keep-alive (keep-alive race)
    "constant-rate",  # open model: constant arrival rate
    "ramping-rate",  # open model: arrival rate ramps start_rate -> end_rate
)
