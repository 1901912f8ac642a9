"""What core tells the apps above it, which it never imports (``reviews`` → ``agents`` →
``core``): Django signals, sent inside the service's transaction, so what a receiver
writes commits or rolls back with the change it hears of.

- ``task_completed(task)``: a task was completed (by a run's agent or a person); the
  reviews app resolves the review comments the task was the rework of.
"""

from django.dispatch import Signal

task_completed = Signal()
