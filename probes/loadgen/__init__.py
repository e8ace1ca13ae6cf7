"""Load generation glue: browser-faithful calls, recording, pacing, safety (used by locustfiles/)."""
