"""GPU benchmarks of the kernels; each script is runnable with `python -m`."""
