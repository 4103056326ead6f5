"""What the tasks share, one layer below them: a training run, an evaluation's files, the report page,
runs started from Python. Tasks call these; no task calls another task."""
