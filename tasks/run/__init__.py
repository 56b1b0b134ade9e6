"""One task in its container: the runner and the steps of a run (inputs, the gateway on the
worker's side, Docker, the clone, the log, the outcome), and writing its end."""
