"""The runner owns time: cycles, concurrency, deadlines, retries, the schedule."""
