"""Why a run stopped and what a task waits for: usage limits (read, acted on, waited out) and the
container engine. Each says what should happen as a RunResult; tasks.queue schedules it."""
