"""HTTP clients of ConnectWise PSA and QuickBooks Online; they import neither Flask nor models."""
