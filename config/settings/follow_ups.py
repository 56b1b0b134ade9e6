"""Follow-ups and messages (tasks/follow_ups.py, tasks/run/conversation.py), read from the
environment, into which base.py has already loaded `.env`."""

import environ

_env = environ.Env()

# Largest session transcript kept to resume in a follow-up, in MiB (larger: the follow-up gets
# the earlier prompts and answers summarised in its prompt instead).
AGENT_TRANSCRIPT_MAX_MB = _env.int("AGENT_TRANSCRIPT_MAX_MB", default=16)
# Messages to a running agent, through its gateway (the image's CLI must read stream-json).
AGENT_MESSAGES = _env.bool("AGENT_MESSAGES", default=True)
# The longest message to a running agent, in bytes (UTF-8).
AGENT_MESSAGE_MAX_BYTES = _env.int("AGENT_MESSAGE_MAX_BYTES", default=64 * 1024)
