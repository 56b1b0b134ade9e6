"""A finished task's pull request (pushed and opened on a worker) and what a user asks of it: the
pull request itself and a follow-up task on its branch."""
