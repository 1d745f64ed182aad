"""Local simulators of ConnectWise PSA and QuickBooks Online, and the demo data set.

Never mounted in the real app: `portal demo`, the tests and the benchmarks reach them over
HTTP exactly as the product reaches the real services.
"""
