"""The one training loop, the recorder, jobs and executors."""
