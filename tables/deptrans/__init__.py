"""Driver status -> AIS "KRT" (seed 002): which driver statuses are reported, the latest-only
queue that sends them, KRT's shift answers, and the cursors of the internal cache feeds."""
