"""Running a sweep: chunks of training sets, checks before compute, the chunk store and
its resume key, the precision target, and the executor over workers and devices."""
