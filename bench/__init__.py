"""socialrec benchmarks (not tests): each figure is a ratio to a peer measured in the same run."""
