"""OpenVLA-OFT-style family: an action chunk decoded in one parallel forward pass."""
