"""The NSO ClientApp: local training on the NSO's own persons (DP-SGD and SecAgg+ come later)."""
